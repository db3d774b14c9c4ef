/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * log-rotate: keep a manager's log under a size cap.
 *
 *     log-rotate LOG SIZE
 *
 * Run by the daemon as the user, beside the user's manager, when the daemon
 * manages the user's runtime dir and manager_log_size is not 0. The manager
 * and its services append to LOG themselves (O_APPEND, as before: nothing
 * sits between them and the file, so nothing is lost when they exit, and the
 * daemon's copy of a failed manager's last lines reads a complete file).
 * This helper watches LOG with inotify; whenever it grows past SIZE bytes,
 * its newest SIZE bytes are copied to LOG.1 (the one rotated file kept,
 * replaced whole through LOG.1.new and rename) and LOG is truncated to 0,
 * where the appending writers go on. A line written in the instant between
 * the last copy and the truncation is lost; the log holds at most about
 * 2 * SIZE bytes at any time.
 *
 * It exits when LOG is removed or renamed (the runtime dir goes), and is
 * killed with everything else of the user's manager when the manager stops.
 * Its own messages go to its standard error, which is LOG.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper-version.h"

#define PROG "dinit-userservd log-rotate"
#define COPY_ROUNDS 4 /* catch up with writers this often before truncating */

/* Copy in[from, to) to the end of out. -1 on a failed read or write. */
static int copy_range(int in, int out, off_t from, off_t to)
{
	char buf[65536];
	while (from < to) {
		size_t want = (size_t)(to - from) < sizeof(buf) ? (size_t)(to - from) : sizeof(buf);
		ssize_t n = pread(in, buf, want, from);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : 0; /* 0: shorter than it was, nothing more */
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -1;
			done += w;
		}
		from += n;
	}
	return 0;
}

/* If fd (LOG) is past cap: its newest cap bytes to LOG.1, then truncate it. */
static void rotate_if_full(int fd, const char *path, off_t cap)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		fprintf(stderr, PROG ": fstat %s: %s\n", path, strerror(errno));
		return;
	}
	if (st.st_size <= cap)
		return;
	char old[PATH_MAX], tmp[PATH_MAX];
	if (snprintf(old, sizeof(old), "%s.1", path) >= (int)sizeof(old) ||
		snprintf(tmp, sizeof(tmp), "%s.1.new", path) >= (int)sizeof(tmp))
		return;
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
		0600);
	if (out < 0)
		fprintf(stderr, PROG ": %s: %s: the log is truncated without a copy\n", tmp,
			strerror(errno));
	off_t end = st.st_size;
	off_t from = end - cap;
	for (int round = 0; out >= 0 && round < COPY_ROUNDS; round++) {
		if (copy_range(fd, out, from, end) < 0) {
			fprintf(stderr, PROG ": copying %s to %s: %s\n", path, tmp, strerror(errno));
			close(out);
			unlink(tmp);
			out = -1;
			break;
		}
		if (fstat(fd, &st) < 0 || st.st_size <= end)
			break;
		from = end; /* written meanwhile: take it too */
		end = st.st_size;
	}
	if (ftruncate(fd, 0) < 0)
		fprintf(stderr, PROG ": truncating %s: %s\n", path, strerror(errno));
	if (out >= 0) {
		if (close(out) < 0 || rename(tmp, old) < 0) {
			fprintf(stderr, PROG ": %s: %s\n", old, strerror(errno));
			unlink(tmp);
		}
	}
}

int main(int argc, char **argv)
{
	helper_version(argc, argv, PROG);
	if (argc != 3) {
		fprintf(stderr, "usage: " PROG " LOG SIZE\n");
		return 2;
	}
	const char *path = argv[1];
	char *end;
	errno = 0;
	unsigned long long cap = strtoull(argv[2], &end, 10);
	if (errno || *end || !argv[2][0] || cap == 0 || cap > (1ull << 40)) {
		fprintf(stderr, PROG ": bad size '%s'\n", argv[2]);
		return 2;
	}
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, PROG ": %s: %s\n", path, fd < 0 ? strerror(errno) :
			"not a regular file");
		return 1;
	}
	int in = inotify_init1(IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, path, IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF |
			IN_DONT_FOLLOW) < 0) {
		fprintf(stderr, PROG ": inotify on %s: %s\n", path, strerror(errno));
		return 1;
	}
	rotate_if_full(fd, path, (off_t)cap);
	for (;;) {
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, PROG ": reading inotify events: %s\n",
				n < 0 ? strerror(errno) : "end of file");
			return 1;
		}
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT))
				return 0; /* the log is gone: so is our job */
			p += sizeof(*ev) + ev->len;
		}
		rotate_if_full(fd, path, (off_t)cap);
	}
}
