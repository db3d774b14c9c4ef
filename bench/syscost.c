/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench/syscost: what each system call the daemon makes for a warm open +
 * close costs on this machine, measured alone in a tight loop (so: hot
 * caches, no wakeups; a lower bound of what it costs on the login path).
 * It tells which of the calls left are worth removing.
 *
 *     cc -O2 -o syscost bench/syscost.c && ./syscost DIR [N]
 *
 * DIR: a directory on the file system of state_dir (tmpfs: /run, /dev/shm),
 * where records are created and removed. Prints the median ns per group.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static const char *dir;
static char text[200];
static int ep, logfd, sp[2], lfd;
static long seq;

static void do_proc_stat(void)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)getppid());
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		exit(1);
	close(fd);
}

static void do_pidfd(void)
{
	int fd = (int)syscall(SYS_pidfd_open, getppid(), 0);
	struct epoll_event ev = {.events = EPOLLIN};
	if (fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		exit(2);
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

static void path_of(char *out, size_t len, const char *suffix)
{
	snprintf(out, len, "%s/%ld%s", dir, seq, suffix);
}

static void do_record_excl(void)
{
	char path[512];
	path_of(path, sizeof(path), "");
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, 170) != 170)
		exit(3);
	close(fd);
}

static void do_record_rename(void)
{
	char path[512], tmp[520];
	path_of(path, sizeof(path), "");
	path_of(tmp, sizeof(tmp), ".new");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, 170) != 170)
		exit(4);
	close(fd);
	if (rename(tmp, path) < 0)
		exit(4);
}

static void do_unlink(void)
{
	char path[512];
	path_of(path, sizeof(path), "");
	if (unlink(path) < 0)
		exit(5);
	seq++;
}

static void do_lstat(void)
{
	struct stat st;
	lstat("/run/user/4242424/bus", &st);
}

static void do_log(void)
{
	if (write(logfd, text, 110) != 110)
		exit(6);
}

static void do_peercred(void)
{
	struct ucred c;
	socklen_t len = sizeof(c);
	if (getsockopt(sp[0], SOL_SOCKET, SO_PEERCRED, &c, &len) < 0)
		exit(7);
}

static void do_accept_eagain(void)
{
	if (accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK) >= 0 || errno != EAGAIN)
		exit(8);
}

static void do_epoll_wait_ready(void)
{
	struct epoll_event evs[8];
	if (epoll_wait(ep, evs, 8, 0) != 1)
		exit(9);
}

struct item {
	const char *name;
	void (*fn)(void);
	void (*after)(void); /* untimed */
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: syscost DIR [N]\n");
		return 2;
	}
	dir = argv[1];
	long n = argc > 2 ? atol(argv[2]) : 20000;
	memset(text, 'x', sizeof(text));
	char lp[512];
	snprintf(lp, sizeof(lp), "%s/syscost.log", dir);
	logfd = open(lp, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0600);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (logfd < 0 || ep < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) < 0)
		return 1;
	/* One fd always ready, for epoll_wait. */
	struct epoll_event ev = {.events = EPOLLOUT};
	epoll_ctl(ep, EPOLL_CTL_ADD, sp[1], &ev);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/syscost.sock", dir);
	unlink(a.sun_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 8) < 0)
		return 1;
	struct item items[] = {
		{"/proc/PID/stat: openat+read+close", do_proc_stat, NULL},
		{"pidfd_open+epoll_ctl ADD+DEL+close", do_pidfd, NULL},
		{"record in place: openat O_EXCL+write+close", do_record_excl, do_unlink},
		{"record via tmp: openat+write+close+rename", do_record_rename, do_unlink},
		{"record: unlink", do_unlink, NULL},
		{"lstat of a missing bus socket", do_lstat, NULL},
		{"log line: write 110 bytes (file)", do_log, NULL},
		{"getsockopt SO_PEERCRED", do_peercred, NULL},
		{"accept4 -> EAGAIN", do_accept_eagain, NULL},
		{"epoll_wait, 1 fd ready", do_epoll_wait_ready, NULL},
	};
	int64_t *t = calloc((size_t)n, sizeof(*t));
	for (size_t k = 0; k < sizeof(items) / sizeof(items[0]); k++) {
		struct item *it = &items[k];
		for (long i = -n / 10; i < n; i++) {
			if (it->fn == do_unlink)
				do_record_excl();
			int64_t t0 = now_ns();
			it->fn();
			int64_t d = now_ns() - t0;
			if (it->after)
				it->after();
			if (i >= 0)
				t[i] = d;
		}
		qsort(t, (size_t)n, sizeof(*t), cmp);
		printf("%-46s p50 %6.2f us  p90 %6.2f us\n", it->name, t[n / 2] / 1000.0,
			t[n * 9 / 10] / 1000.0);
	}
	unlink(lp);
	unlink(a.sun_path);
	return 0;
}
