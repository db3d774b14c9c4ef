/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dinit-launch: write the user's generated dinit services, then exec dinit.
 *
 *   dinit-launch [--system-boot-dir DIR]... GENDIR BOOTD NOTIFIER -- dinit ARGS...
 *
 * Runs as the user (the daemon never reads the user's home). Writes, each
 * atomically (temporary file + rename, mode 0644), into GENDIR:
 *
 *   boot                   type internal, waits-for.d = BOOTD: the usual
 *                          dinit boot service, so that "dinitctl enable" and
 *                          "dinitctl disable" work as everywhere else.
 *   dinit-userservd-ready  type scripted, command = NOTIFIER, depends-on boot
 *                          and depends-ms every service linked in BOOTD now.
 *
 * System boot dirs (--system-boot-dir, from system_boot_dirs): each service
 * linked there is an autostart service of every user too (boot waits-for it,
 * the ready service depends-ms on it), unless the user's BOOTD has an entry
 * of the same name: a service of its own, or a link to /dev/null, which
 * masks it. dinit takes every BOOTD entry as a dependency by name, so a
 * masked NAME also gets GENDIR/NAME, an internal service that does nothing;
 * GENDIR comes first in the search order, so that is what the name means
 * for this dinit. Files of GENDIR not written by this run are removed.
 *
 * dinit's stdout (its console log) is pointed at stderr, where the daemon
 * logs what its managers say.
 *
 * dinit is started with dinit-userservd-ready. It runs NOTIFIER only once
 * every autostart service has started; if one of them fails to start (or
 * cannot be loaded), the ready service fails, nothing is left active, and
 * dinit exits: the daemon sees the manager end before it was ready. A
 * depends-ms dependency binds only until it has started, so autostart
 * services that stop later do not take the ready service down.
 *
 * BOOTD is read as the user, the way dinit reads it: a missing or unreadable
 * directory means no autostart services. Two kinds of entries are left to
 * boot's waits-for.d alone (waited for, but their failure does not fail the
 * login): names that dinit does not take as plain service names, and names
 * with no service description in any --services-dir of the dinit command
 * line (dinit itself ignores those in a dependency directory, with a warning).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper-version.h"
#include "environment-d.h"
#include "util.h" /* char_is_control: inline, nothing linked */

#define PROG "dinit-userservd dinit-launch"
#define READY_SERVICE "dinit-userservd-ready"
#define MAX_AUTOSTART 4096

static void usage(void)
{
	fprintf(stderr, "usage: dinit-launch GENDIR BOOTD NOTIFIER -- DINIT [ARG...]\n");
	exit(100);
}

/*
 * Whether s can be written as a quoted dinit setting value that means s in
 * every dinit since 0.18: absolute, no control characters, and no '$' (whose
 * expansion rules differ between versions).
 */
static bool path_ok(const char *s)
{
	if (s[0] != '/')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (char_is_control(*p) || *p == '$')
			return false;
	return true;
}

/* Writes s double-quoted, with '"' and '\' escaped. */
static void put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/*
 * A name dinit loads from a dependency directory and that needs no quoting:
 * letters, digits, '.', '_', '-', '@' and non-ASCII bytes, not starting with
 * '.' or '@'.
 */
static bool service_name_ok(const char *s)
{
	if (!s[0] || s[0] == '.' || s[0] == '@' || strlen(s) > 255)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-' ||
			*p == '@' || *p >= 0x80)
			continue;
		return false;
	}
	return true;
}

/* The --services-dir (-d) values of the dinit command line. */
static size_t services_dirs(char **dinit_argv, const char **dirs, size_t max)
{
	size_t n = 0;
	for (size_t i = 1; dinit_argv[i] && dinit_argv[i + 1]; i++)
		if ((!strcmp(dinit_argv[i], "--services-dir") || !strcmp(dinit_argv[i], "-d")) &&
			n < max)
			dirs[n++] = dinit_argv[++i];
	return n;
}

/*
 * Whether dinit can find a description for name in one of dirs: the file
 * named like the service, or (for "base@arg") like its base.
 */
static bool service_found(const char *name, const char **dirs, size_t ndirs)
{
	char base[256];
	snprintf(base, sizeof(base), "%.*s", (int)strcspn(name, "@"), name);
	for (size_t i = 0; i < ndirs; i++) {
		char path[4096];
		struct stat st;
		if (snprintf(path, sizeof(path), "%s/%s", dirs[i], base) < (int)sizeof(path) &&
			stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
			return true;
		if (snprintf(path, sizeof(path), "%s/%s", dirs[i], name) < (int)sizeof(path) &&
			stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
			return true;
	}
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_mask(const char *dir, const char *name);

/* The autostart service names in bootd, sorted; *n = 0 if there are none. */
static char **read_bootd(const char *bootd, const char **dirs, size_t ndirs, size_t *n)
{
	*n = 0;
	DIR *d = opendir(bootd);
	if (!d) {
		if (errno != ENOENT && errno != ENOTDIR)
			fprintf(stderr, PROG ": %s: %s: no autostart services\n", bootd,
				strerror(errno));
		return NULL;
	}
	char **names = NULL;
	size_t cap = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de)
			break;
		if (de->d_name[0] == '.' || is_mask(bootd, de->d_name))
			continue;
		if (!service_name_ok(de->d_name)) {
			fprintf(stderr, PROG ": %s/%s: unusual service name, only waited for\n", bootd,
				de->d_name);
			continue;
		}
		if (ndirs && !service_found(de->d_name, dirs, ndirs)) {
			fprintf(stderr, PROG ": %s/%s: no service description, only waited for\n",
				bootd, de->d_name);
			continue;
		}
		if (*n == MAX_AUTOSTART) {
			fprintf(stderr, PROG ": %s: more than %d entries, the rest only waited for\n",
				bootd, MAX_AUTOSTART);
			break;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				fprintf(stderr, PROG ": out of memory\n");
				exit(111);
			}
			names = nn;
		}
		if (!(names[*n] = strdup(de->d_name))) {
			fprintf(stderr, PROG ": out of memory\n");
			exit(111);
		}
		(*n)++;
	}
	if (errno)
		fprintf(stderr, PROG ": reading %s: %s\n", bootd, strerror(errno));
	closedir(d);
	if (*n)
		qsort(names, *n, sizeof(*names), cmp_str);
	return names;
}

/* Whether dir/name is a symbolic link to /dev/null: a mask. */
static bool is_mask(const char *dir, const char *name)
{
	char path[4096], target[64];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return false;
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return !strcmp(target, "/dev/null");
}

static bool name_in(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/* Every entry name of dir (not starting with '.'); NULL and 0 when none. */
static char **read_entries(const char *dir, size_t *n)
{
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char **names = NULL;
	struct dirent *de;
	while ((de = readdir(d)) && *n < MAX_AUTOSTART) {
		if (de->d_name[0] == '.')
			continue;
		char **nn = realloc(names, (*n + 1) * sizeof(*names));
		if (!nn || !(nn[*n] = strdup(de->d_name))) {
			fprintf(stderr, PROG ": out of memory\n");
			exit(111);
		}
		names = nn;
		(*n)++;
	}
	closedir(d);
	return names;
}

/* Remove what an earlier run generated (masks that may be gone now). */
static void remove_stale(int gfd, const char *gendir)
{
	int fd = dup(gfd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && strcmp(de->d_name, "boot") &&
			strcmp(de->d_name, READY_SERVICE) && unlinkat(gfd, de->d_name, 0) < 0)
			fprintf(stderr, PROG ": unlink %s/%s: %s\n", gendir, de->d_name, strerror(errno));
	closedir(d);
}

/* Replaces dirfd/name with the given content, atomically. */
static int write_file(int dirfd, const char *dir, const char *name, const char *data,
	size_t len)
{
	char tmp[300];
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST) { /* left by an earlier run that died */
		unlinkat(dirfd, tmp, 0);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	}
	if (fd < 0) {
		fprintf(stderr, PROG ": create %s/%s: %s\n", dir, tmp, strerror(errno));
		return -1;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fprintf(stderr, PROG ": write %s/%s: %s\n", dir, tmp, strerror(errno));
			close(fd);
			unlinkat(dirfd, tmp, 0);
			return -1;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, 0644) < 0 || close(fd) < 0) {
		fprintf(stderr, PROG ": %s/%s: %s\n", dir, tmp, strerror(errno));
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		fprintf(stderr, PROG ": rename %s/%s: %s\n", dir, tmp, strerror(errno));
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	return 0;
}

/* Builds a file's text in memory; exits on allocation failure. */
struct text {
	char *buf;
	size_t len;
	FILE *f;
};

static void text_open(struct text *t)
{
	t->buf = NULL;
	t->len = 0;
	t->f = open_memstream(&t->buf, &t->len);
	if (!t->f) {
		fprintf(stderr, PROG ": open_memstream: %s\n", strerror(errno));
		exit(111);
	}
}

static void text_close(struct text *t)
{
	if (ferror(t->f) || fclose(t->f) != 0) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(111);
	}
}

int main(int argc, char **argv)
{
	helper_version(argc, argv, PROG);
	const char *sys_dirs[16];
	size_t nsys = 0;
	while (argc >= 3 && !strcmp(argv[1], "--system-boot-dir")) {
		if (nsys < sizeof(sys_dirs) / sizeof(sys_dirs[0]))
			sys_dirs[nsys++] = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 6 || strcmp(argv[4], "--") != 0)
		usage();
	const char *gendir = argv[1], *bootd = argv[2], *notifier = argv[3];
	char **dinit_argv = argv + 5;
	environment_d_apply(PROG); /* the environment dinit, and so every service, starts with */
	if (!path_ok(gendir) || !path_ok(bootd) || !path_ok(notifier)) {
		fprintf(stderr, PROG ": paths must be absolute, with no control characters and "
				"no '$': %s %s %s\n", gendir, bootd, notifier);
		return 100;
	}

	int gfd = open(gendir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (gfd < 0) {
		fprintf(stderr, PROG ": %s: %s\n", gendir, strerror(errno));
		return 111;
	}

	struct text boot, ready;
	text_open(&boot);
	fprintf(boot.f,
		"# Generated by dinit-userservd at every start of this dinit: do not edit.\n"
		"# Autostart services are the links in the waits-for.d directory below\n"
		"# (dinitctl enable/disable manage them).\n"
		"type = internal\n"
		"restart = false\n"
		"waits-for.d = ");
	put_quoted(boot.f, bootd);
	fputc('\n', boot.f);

	const char *dirs[64];
	size_t ndirs = services_dirs(dinit_argv, dirs, sizeof(dirs) / sizeof(dirs[0]));
	size_t n;
	char **names = read_bootd(bootd, dirs, ndirs, &n);
	/* Every name in the user's BOOTD (masks included) overrides the system's. */
	size_t nall = 0;
	char **all = read_entries(bootd, &nall);
	size_t nsysnames = 0;
	char **sysnames = NULL;
	for (size_t k = 0; k < nsys; k++) {
		size_t m;
		char **found = read_bootd(sys_dirs[k], dirs, ndirs, &m);
		for (size_t i = 0; i < m; i++) {
			if (name_in(all, nall, found[i]) || name_in(sysnames, nsysnames, found[i]) ||
				!(sysnames = realloc(sysnames, (nsysnames + 1) * sizeof(*sysnames)))) {
				free(found[i]);
				continue;
			}
			sysnames[nsysnames++] = found[i];
			fprintf(boot.f, "waits-for = %s\n", found[i]);
		}
		free(found);
	}
	text_close(&boot);
	remove_stale(gfd, gendir);
	for (size_t i = 0; i < nall; i++) {
		if (!is_mask(bootd, all[i]) || !service_name_ok(all[i]))
			continue;
		static const char mask[] = "# Generated by dinit-userservd: masked by a link to "
			"/dev/null in boot.d.\ntype = internal\n";
		if (write_file(gfd, gendir, all[i], mask, sizeof(mask) - 1) < 0)
			return 111;
	}
	text_open(&ready);
	fprintf(ready.f,
		"# Generated by dinit-userservd at every start of this dinit: do not edit.\n"
		"# Tells the daemon that the login may proceed, once every autostart service\n"
		"# (as linked when this dinit started) has started. If one fails to start,\n"
		"# this service fails and dinit exits.\n"
		"type = scripted\n"
		"restart = false\n"
		"command = ");
	put_quoted(ready.f, notifier);
	fprintf(ready.f, "\ndepends-on = boot\n");
	for (size_t i = 0; i < n; i++)
		fprintf(ready.f, "depends-ms = %s\n", names[i]);
	for (size_t i = 0; i < nsysnames; i++)
		fprintf(ready.f, "depends-ms = %s\n", sysnames[i]);
	text_close(&ready);

	if (write_file(gfd, gendir, "boot", boot.buf, boot.len) < 0 ||
		write_file(gfd, gendir, READY_SERVICE, ready.buf, ready.len) < 0)
		return 111;
	close(gfd);
	free(boot.buf);
	free(ready.buf);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	for (size_t i = 0; i < nsysnames; i++)
		free(sysnames[i]);
	free(sysnames);
	for (size_t i = 0; i < nall; i++)
		free(all[i]);
	free(all);

	/* dinit writes its console log (service started / failed lines, load
	 * errors) to stdout: send it where the daemon logs our stderr. */
	if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
		fprintf(stderr, PROG ": dup2: %s\n", strerror(errno));
	execvp(dinit_argv[0], dinit_argv);
	fprintf(stderr, PROG ": cannot run %s: %s\n", dinit_argv[0], strerror(errno));
	return 127;
}
