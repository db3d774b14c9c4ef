/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * How long a SIGKILLed process takes to be gone (its pidfd readable) with
 * and without an inotify watch, as log-rotate holds one on the manager's log
 * (src/libexec/log-rotate.c). With DELETE, the watched file is removed just
 * before the kill, as the runtime dir's removal does at a logout.
 *
 *   cc -O2 -o /var/tmp/inotify-exit bench/inotify-exit.c && /var/tmp/inotify-exit /var/tmp
 *
 * Prints p50 and max microseconds of 50 rounds of each.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 50

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* One child, watching path or not; killed, optionally after path's removal. */
static int64_t one(const char *path, int watch, int delete)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	int sync[2];
	if (fd < 0 || pipe(sync) < 0) {
		perror(path);
		exit(1);
	}
	close(fd);
	pid_t pid = fork();
	if (pid == 0) {
		if (watch) {
			int in = inotify_init1(0);
			if (in < 0 || inotify_add_watch(in, path, IN_MODIFY | IN_DELETE_SELF) < 0)
				_exit(1);
		}
		if (write(sync[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c;
	if (pid < 0 || read(sync[0], &c, 1) != 1) {
		perror("fork");
		exit(1);
	}
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (delete)
		unlink(path);
	int64_t t0 = now_ns();
	kill(pid, SIGKILL);
	struct pollfd p = {pidfd, POLLIN, 0};
	poll(&p, 1, -1);
	int64_t t = now_ns() - t0;
	waitpid(pid, NULL, 0);
	close(pidfd);
	close(sync[0]);
	close(sync[1]);
	unlink(path);
	return t;
}

int main(int argc, char **argv)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/inotify-exit.%d", argc > 1 ? argv[1] : "/tmp",
		(int)getpid());
	static const char *const names[] = {"no watch", "watch", "watch, file removed"};
	for (int mode = 0; mode < 3; mode++) {
		int64_t t[ROUNDS];
		for (int r = 0; r < ROUNDS; r++)
			t[r] = one(path, mode > 0, mode == 2);
		qsort(t, ROUNDS, sizeof(t[0]), cmp);
		printf("%-20s gone after SIGKILL: p50 %5lld us, max %6lld us\n", names[mode],
			(long long)t[ROUNDS / 2] / 1000, (long long)t[ROUNDS - 1] / 1000);
	}
	return 0;
}
