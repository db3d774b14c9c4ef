/* SPDX-License-Identifier: BSD-2-Clause */
#include "rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "log.h"
#include "mkdirs.h"

int rundir_expand(const char *tmpl, uid_t uid, gid_t gid, const char *name,
	char *out, size_t outlen)
{
	size_t o = 0;
	for (const char *p = tmpl; *p; p++) {
		char piece[64];
		const char *add = piece;
		if (*p != '%') {
			piece[0] = *p;
			piece[1] = '\0';
		} else {
			switch (*++p) {
			case 'u': snprintf(piece, sizeof(piece), "%u", (unsigned)uid); break;
			case 'g': snprintf(piece, sizeof(piece), "%u", (unsigned)gid); break;
			case 'n': add = name; break;
			case '%': strcpy(piece, "%"); break;
			default: return -1;
			}
		}
		size_t n = strlen(add);
		if (o + n >= outlen)
			return -1;
		memcpy(out + o, add, n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

int rundir_create(const char *path, uid_t uid, gid_t gid, unsigned size_mib,
	char *err, size_t errlen)
{
	if (path[0] != '/') {
		snprintf(err, errlen, "runtime directory '%s' is not absolute", path);
		return -1;
	}
	if (mkdirs_parents(path) < 0) {
		snprintf(err, errlen, "cannot create the parents of %s: %s", path, strerror(errno));
		return -1;
	}
	if (mkdir(path, 0700) == 0) {
		/* Fresh: ours to hand over. chown through an fd so nothing planted
		 * at that name in between can redirect it. */
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchown(fd, uid, gid) < 0 || fchmod(fd, 0700) < 0) {
			snprintf(err, errlen, "cannot hand %s to uid %u: %s", path, (unsigned)uid,
				strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
		if (size_mib) {
			char opts[128];
			snprintf(opts, sizeof(opts), "mode=0700,uid=%u,gid=%u,size=%um", (unsigned)uid,
				(unsigned)gid, size_mib);
			if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
				snprintf(err, errlen, "cannot mount a tmpfs on %s: %s", path,
					strerror(errno));
				rmdir(path);
				return -1;
			}
		}
		return 0;
	}
	if (errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	/* Already there (an earlier session, or left behind): accept it only if
	 * it is already exactly what we would have made; never "fix" it. */
	struct stat st;
	if (lstat(path, &st) < 0) {
		snprintf(err, errlen, "cannot inspect %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 07777) != 0700) {
		snprintf(err, errlen, "refusing to use %s: it exists and is not a 0700 directory "
			"owned by uid %u", path, (unsigned)uid);
		return -1;
	}
	return 0;
}

/* The mount a file is on (bind mounts of one filesystem differ here, where
 * st_dev does not). */
static int mount_id(int dirfd, const char *name, uint64_t *id)
{
	struct statx stx;
	int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (name[0] ? 0 : AT_EMPTY_PATH);
	if (statx(dirfd, name, flags, STATX_MNT_ID, &stx) < 0)
		return -1;
	if (!(stx.stx_mask & STATX_MNT_ID)) {
		errno = ENOTSUP;
		return -1;
	}
	*id = stx.stx_mnt_id;
	return 0;
}

/* Empty the directory dfd (on mount mnt). Returns 0 when everything that
 * could be removed was; mount points inside are left in place. */
static int remove_contents(int dfd, uint64_t mnt, int depth)
{
	if (depth > 128) {
		close(dfd);
		errno = ELOOP;
		return -1;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -1;
	}
	int ret = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			/* Files, sockets, symlinks: the entry itself goes, never
			 * what a symlink points to. */
			if (unlinkat(dirfd(d), e->d_name, 0) < 0)
				ret = -1;
			continue;
		}
		int sub = openat(dirfd(d), e->d_name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		uint64_t sub_mnt;
		if (sub < 0 || mount_id(sub, "", &sub_mnt) < 0 || sub_mnt != mnt) {
			/* A mount point (bind mounts of the same filesystem
			 * included): never descend, never remove. */
			if (sub >= 0)
				close(sub);
			ret = -1;
			continue;
		}
		if (remove_contents(sub, mnt, depth + 1) < 0)
			ret = -1;
		if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0)
			ret = -1;
	}
	closedir(d);
	return ret;
}

int rundir_remove(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		log_err("cannot open %s for removal: %s", path, strerror(errno));
		return -1;
	}
	uint64_t mnt, parent_mnt;
	if (mount_id(fd, "", &mnt) < 0 || mount_id(fd, "..", &parent_mnt) < 0) {
		log_err("cannot inspect %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	struct statfs sfs;
	if (mnt != parent_mnt && fstatfs(fd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC) {
		/* Our per-user tmpfs (rundir_size): unmounting takes everything. */
		close(fd);
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
			log_err("cannot unmount %s: %s", path, strerror(errno));
			return -1;
		}
		if (rmdir(path) < 0 && errno != ENOENT) {
			log_warn("cannot remove %s: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	int r = remove_contents(fd, mnt, 0);
	if (rmdir(path) < 0 && errno != ENOENT) {
		log_warn("cannot remove %s: %s", path, strerror(errno));
		return -1;
	}
	return r;
}
