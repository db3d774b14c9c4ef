/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What a child of the daemon costs as the daemon holds more fds (one pidfd
 * per session): fork() + close_range(3, ~0) + _exit, against clone3 with
 * CLONE_FILES + close_range(3, ~0, CLOSE_RANGE_UNSHARE) + _exit (what
 * src/daemon/spawn.c does), each waited for, interleaved, per fd count.
 *
 *   cc -O2 -o /var/tmp/fork-fds bench/fork-fds.c && /var/tmp/fork-fds 100 1000 10000 19000
 *
 * Prints, per count: min and median microseconds of each way.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 101

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

static int64_t one(bool shared)
{
	int64_t t0 = now_ns();
	pid_t pid;
	if (shared) {
		struct clone_args args = {.flags = CLONE_FILES, .exit_signal = SIGCHLD};
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid == 0) {
			syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_UNSHARE);
			_exit(0);
		}
	} else {
		pid = fork();
		if (pid == 0) {
			syscall(SYS_close_range, 3, ~0U, 0);
			_exit(0);
		}
	}
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	waitpid(pid, NULL, 0);
	return now_ns() - t0;
}

int main(int argc, char **argv)
{
	int open_fds = 3, most = 0;
	for (int a = 1; a < argc; a++)
		most = atoi(argv[a]) > most ? atoi(argv[a]) : most;
	struct rlimit rl = {(rlim_t)most + 64, (rlim_t)most + 64};
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		perror("setrlimit");
		return 1;
	}
	for (int a = 1; a < argc; a++) {
		int n = atoi(argv[a]);
		for (; open_fds < n; open_fds++)
			if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0) {
				perror("open");
				return 1;
			}
		int64_t f[ROUNDS], c[ROUNDS];
		for (int r = 0; r < ROUNDS; r++) {
			f[r] = one(false);
			c[r] = one(true);
		}
		qsort(f, ROUNDS, sizeof(f[0]), cmp);
		qsort(c, ROUNDS, sizeof(c[0]), cmp);
		printf("%6d fds: fork %5lld / %5lld us, clone3 CLONE_FILES %5lld / %5lld us "
		       "(min / median)\n", n, (long long)f[0] / 1000, (long long)f[ROUNDS / 2] / 1000,
		       (long long)c[0] / 1000, (long long)c[ROUNDS / 2] / 1000);
	}
	return 0;
}
