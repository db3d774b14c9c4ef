/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rundir: template expansion, creation rules, and removal that never leaves
 * the directory (symlinks not followed, mount points not entered).
 * The mount case needs root and a private mount namespace: the test makes
 * one with unshare(CLONE_NEWNS) and skips when it cannot.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "mkdirs.h"
#include "rundir.h"

static char base[256];

static int setup(void **state)
{
	snprintf(base, sizeof(base), "/var/tmp/dus-rundir-test.XXXXXX");
	if (!mkdtemp(base))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* mkdir -p: every missing component, 0755; again, nothing to do; a file in
 * the way is an error, as is a path whose parent cannot be made. */
static void test_mkdirs(void **state)
{
	char path[512], file[512];
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	assert_int_equal(mkdirs(path), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(mkdirs(path), 0);
	snprintf(path, sizeof(path), "%s/a/d/e/sock", base);
	assert_int_equal(mkdirs_parents(path), 0);
	snprintf(path, sizeof(path), "%s/a/d/e", base);
	assert_true(exists(path));
	snprintf(path, sizeof(path), "%s/a/d/e/sock", base);
	assert_false(exists(path));
	snprintf(file, sizeof(file), "%s/f", base);
	touch(file);
	snprintf(path, sizeof(path), "%s/f/g/h", base);
	assert_int_equal(mkdirs(path), -1);
	assert_int_equal(errno, ENOTDIR);
}

static void test_expand(void **state)
{
	char out[64];
	assert_int_equal(rundir_expand("/run/user/%u", 1000, 100, "ann", out, sizeof(out)), 0);
	assert_string_equal(out, "/run/user/1000");
	assert_int_equal(rundir_expand("/r/%n-%g-%%-%u", 7, 8, "bob", out, sizeof(out)), 0);
	assert_string_equal(out, "/r/bob-8-%-7");
	assert_int_equal(rundir_expand("/r/%x", 7, 8, "bob", out, sizeof(out)), -1);
	assert_int_equal(rundir_expand("/r/%", 7, 8, "bob", out, sizeof(out)), -1);
	assert_int_equal(rundir_expand("/a/very/long/path/%n", 7, 8, "bob", out, 10), -1);
}

static void test_create_fresh_and_existing(void **state)
{
	char path[300], err[256];
	snprintf(path, sizeof(path), "%s/parent/1234", base);
	uid_t uid = geteuid() == 0 ? 1234 : geteuid();
	gid_t gid = geteuid() == 0 ? 1234 : getegid();
	assert_int_equal(rundir_create(path, uid, gid, 0, err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, uid);
	/* Exactly what we would make: accepted as it is. */
	assert_int_equal(rundir_create(path, uid, gid, 0, err, sizeof(err)), 0);
	/* Wrong mode: refused, and left as found. */
	chmod(path, 0755);
	assert_int_equal(rundir_create(path, uid, gid, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "refusing"));
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
}

static void test_create_refuses_symlink_and_file(void **state)
{
	char link[300], file[300], target[300], err[256];
	snprintf(target, sizeof(target), "%s/target", base);
	snprintf(link, sizeof(link), "%s/link", base);
	snprintf(file, sizeof(file), "%s/file", base);
	assert_int_equal(mkdir(target, 0700), 0);
	assert_int_equal(symlink(target, link), 0);
	touch(file);
	assert_int_equal(rundir_create(link, geteuid(), getegid(), 0, err, sizeof(err)), -1);
	assert_int_equal(rundir_create(file, geteuid(), getegid(), 0, err, sizeof(err)), -1);
	assert_int_equal(rundir_create("relative/x", geteuid(), getegid(), 0, err, sizeof(err)), -1);
}

static void test_remove_does_not_follow_symlinks(void **state)
{
	char dir[300], outside[300], p[400];
	snprintf(dir, sizeof(dir), "%s/rd", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mkdir(outside, 0755), 0);
	snprintf(p, sizeof(p), "%s/keep", outside);
	touch(p);
	snprintf(p, sizeof(p), "%s/evil", dir);
	assert_int_equal(symlink(outside, p), 0);
	snprintf(p, sizeof(p), "%s/sub", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/sub/deeper", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/sub/deeper/file", dir);
	touch(p);
	snprintf(p, sizeof(p), "%s/sub/link-out", dir);
	assert_int_equal(symlink(outside, p), 0);

	assert_int_equal(rundir_remove(dir), 0);
	assert_false(exists(dir));
	snprintf(p, sizeof(p), "%s/keep", outside);
	assert_true(exists(p));
	/* A missing dir is nothing to do. */
	assert_int_equal(rundir_remove(dir), 0);
}

/*
 * The race the O_NOFOLLOW of the removal's openat() guards: between the
 * lstat of an entry and its open, the user swaps the directory for a symlink
 * to somewhere else. The unit is linked with --wrap=fstatat64
 * (tests/unit/meson.build), so the swap happens at exactly that moment.
 */
int __real_fstatat64(int dirfd, const char *path, struct stat *st, int flags);
static const char *swap_name;   /* the entry to swap after its lstat */
static const char *swap_target; /* what the symlink points to */

int __wrap_fstatat64(int dirfd, const char *path, struct stat *st, int flags);
int __wrap_fstatat64(int dirfd, const char *path, struct stat *st, int flags)
{
	int r = __real_fstatat64(dirfd, path, st, flags);
	if (r == 0 && swap_name && !strcmp(path, swap_name)) {
		swap_name = NULL;
		if (unlinkat(dirfd, path, AT_REMOVEDIR) < 0 || symlinkat(swap_target, dirfd, path) < 0)
			swap_target = NULL; /* the test fails: the swap did not happen */
	}
	return r;
}

static void test_remove_does_not_follow_a_swapped_symlink(void **state)
{
	char dir[300], outside[300], p[400];
	snprintf(dir, sizeof(dir), "%s/rds", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mkdir(outside, 0755), 0);
	snprintf(p, sizeof(p), "%s/keep", outside);
	touch(p);
	snprintf(p, sizeof(p), "%s/swapped", dir);
	assert_int_equal(mkdir(p, 0700), 0);

	swap_name = "swapped";
	swap_target = outside;
	rundir_remove(dir); /* the symlink it was given instead may stay: -1 or 0 */
	assert_null(swap_name);     /* the removal lstat'ed the entry... */
	assert_non_null(swap_target); /* ...and the swap happened then */
	snprintf(p, sizeof(p), "%s/keep", outside);
	assert_true(exists(p));
}

static void test_remove_refuses_symlink_as_rundir(void **state)
{
	char link[300], target[300], p[400];
	snprintf(target, sizeof(target), "%s/t2", base);
	snprintf(link, sizeof(link), "%s/l2", base);
	assert_int_equal(mkdir(target, 0755), 0);
	snprintf(p, sizeof(p), "%s/keep", target);
	touch(p);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(rundir_remove(link), -1);
	assert_true(exists(p));
}

static void test_remove_skips_mount_points(void **state)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 ||
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		skip();
	char dir[300], src[300], p[400];
	snprintf(dir, sizeof(dir), "%s/rdm", base);
	snprintf(src, sizeof(src), "%s/src", base);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mkdir(src, 0755), 0);
	snprintf(p, sizeof(p), "%s/precious", src);
	touch(p);
	/* A bind mount of the same filesystem: same st_dev, other mount. */
	snprintf(p, sizeof(p), "%s/bind", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(mount(src, p, NULL, MS_BIND, NULL), 0);
	snprintf(p, sizeof(p), "%s/plain", dir);
	touch(p);

	assert_int_equal(rundir_remove(dir), -1); /* the mount point stays */
	snprintf(p, sizeof(p), "%s/precious", src);
	assert_true(exists(p));
	snprintf(p, sizeof(p), "%s/plain", dir);
	assert_false(exists(p));
	snprintf(p, sizeof(p), "%s/bind", dir);
	assert_int_equal(umount(p), 0);
}

static void test_tmpfs_rundir(void **state)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 ||
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		skip();
	char path[300], err[256], p[400];
	snprintf(path, sizeof(path), "%s/tmpfs-rd", base);
	assert_int_equal(rundir_create(path, 1234, 1234, 1, err, sizeof(err)), 0);
	struct statfs sfs;
	assert_int_equal(statfs(path, &sfs), 0);
	assert_int_equal(sfs.f_type, TMPFS_MAGIC);
	assert_int_equal((unsigned long long)sfs.f_blocks * sfs.f_bsize, 1 << 20);
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(p, sizeof(p), "%s/file", path);
	touch(p);
	assert_int_equal(rundir_remove(path), 0);
	assert_false(exists(path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand),
		cmocka_unit_test_setup_teardown(test_mkdirs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_fresh_and_existing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_refuses_symlink_and_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_does_not_follow_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_refuses_symlink_as_rundir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_does_not_follow_a_swapped_symlink, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_remove_skips_mount_points, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmpfs_rundir, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
