/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scandir-wait: the readiness waiter of the runit and s6 backends.
 *
 *   scandir-wait --runit|--s6 [--since SEC[.NSEC]] [--timeout SECS] DIR
 *
 * Runs as the user, right after the manager (runsvdir or s6-svscan on DIR).
 * Exits 0 once every service present in DIR when it starts is up, 1 (with a
 * line on stderr naming the service) as soon as one of them fails to come up
 * or when SECS pass, 100 on bad usage, 111 when a system call fails.
 *
 * The services: every entry of DIR not starting with '.' that is a directory
 * (or a link to one) and has no "down" file (the supervisor will not start
 * those). A missing DIR has none: exit 0 at once.
 *
 * Up means, from supervise/status (written by runsv / s6-supervise):
 *   runit  state "run" with a pid that has exec'd ./run (runsv writes the
 *          status between fork and exec), and, if the service directory has
 *          an executable ./check, that check exiting 0 (as sv(8) does; it is
 *          re-run with a short backoff while it fails).
 *   s6     a pid (s6-supervise records it only once ./run was exec'd); with
 *          a notification-fd file, also the ready flag: the service said so.
 * Failed means: ./run is missing or not executable, or a start attempt was
 * seen (a pid; for s6 also a recorded wait status) and the service went down
 * again before it was up. A runit ./run that exits at once may be seen up
 * for a moment: without ./check, runit cannot tell.
 *
 * Status files last written before --since (the moment the daemon planned
 * this manager, less a margin for coarse file timestamps) are left over from
 * an earlier manager and ignored until rewritten.
 *
 * Waiting uses inotify on each service directory (for supervise/ to appear)
 * and on each supervise/ (for status to be replaced). The only timed
 * re-checks are the ones no event announces: a runit child caught between
 * fork and exec, and a failing ./check.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helper-version.h"

#define PROG "dinit-userservd scandir-wait"
#define FRESH_MARGIN_NS 50000000LL /* file timestamps are coarse (a jiffy) */
#define MAX_SERVICES 1000

enum kind { KIND_RUNIT, KIND_S6 };
enum svc_state { SVC_WAITING, SVC_UP, SVC_FAILED };

struct svc {
	char *name;
	char *path;          /* DIR/name */
	int dirfd;
	int wd_dir, wd_sup;  /* inotify watches, -1 when none */
	enum svc_state state;
	bool has_check;      /* runit: executable ./check */
	bool needs_ready;    /* s6: notification-fd present */
	bool dirty;          /* status to be read again */
	pid_t attempt_pid;   /* start attempt seen in a fresh status, 0 if none */
	pid_t check_pid;     /* running ./check */
	uint64_t retry_at;   /* monotonic ms of a timed re-check, 0 if none */
	unsigned backoff_ms;
	char last[160];      /* what was last seen, for messages */
};

static enum kind kind;
static struct timespec since;
static struct svc *svcs;
static size_t nsvcs;
static int ino_fd = -1;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void die_sys(const char *what)
{
	fprintf(stderr, PROG ": %s: %s\n", what, strerror(errno));
	exit(111);
}

static void usage(void)
{
	fprintf(stderr, "usage: scandir-wait --runit|--s6 [--since SEC[.NSEC]] "
			"[--timeout SECS] DIR\n");
	exit(100);
}

static bool parse_since(const char *s, struct timespec *ts)
{
	char *end;
	errno = 0;
	long long sec = strtoll(s, &end, 10);
	if (errno || end == s || sec < 0)
		return false;
	long nsec = 0;
	if (*end == '.') {
		const char *p = end + 1;
		int digits = 0;
		for (; *p >= '0' && *p <= '9' && digits < 9; p++, digits++)
			nsec = nsec * 10 + (*p - '0');
		if (digits == 0 || *p)
			return false;
		for (; digits < 9; digits++)
			nsec *= 10;
	} else if (*end) {
		return false;
	}
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = nsec;
	return true;
}

static bool fresh(const struct stat *st)
{
	long long m = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	long long s = (long long)since.tv_sec * 1000000000LL + since.tv_nsec;
	return m >= s - FRESH_MARGIN_NS;
}

static void set_last(struct svc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_last(struct svc *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->last, sizeof(s->last), fmt, ap);
	va_end(ap);
}

static void svc_fail(struct svc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void svc_fail(struct svc *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->last, sizeof(s->last), fmt, ap);
	va_end(ap);
	s->state = SVC_FAILED;
}

static void schedule(struct svc *s, unsigned first_ms, unsigned max_ms)
{
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : first_ms;
	if (s->backoff_ms > max_ms)
		s->backoff_ms = max_ms;
	s->retry_at = now_ms() + s->backoff_ms;
}

static void watch_supervise(struct svc *s)
{
	if (s->wd_sup >= 0)
		return;
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/supervise", s->path) >= (int)sizeof(path))
		return;
	s->wd_sup = inotify_add_watch(ino_fd, path, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);
	if (s->wd_sup < 0 && errno != ENOENT && errno != ENOTDIR)
		die_sys("inotify_add_watch supervise");
}

/* Whether pid has exec'd, i.e. is no longer runsv's forked child. -1: gone. */
static int runit_execd(pid_t pid)
{
	char path[64], comm[32];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, "runsv") != 0;
}

static void start_check(struct svc *s)
{
	pid_t pid = fork();
	if (pid < 0)
		die_sys("fork");
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0 && null != 0) {
			dup2(null, 0);
			close(null);
		}
		if (fchdir(s->dirfd) < 0)
			_exit(127);
		execl("./check", "./check", (char *)NULL);
		_exit(127);
	}
	s->check_pid = pid;
	set_last(s, "run, ./check running");
}

static void evaluate_runit(struct svc *s, const unsigned char *b, ssize_t n)
{
	if (n != 20) {
		set_last(s, "supervise/status has an unknown format");
		return;
	}
	pid_t pid = (pid_t)((uint32_t)b[12] | (uint32_t)b[13] << 8 | (uint32_t)b[14] << 16 |
		(uint32_t)b[15] << 24);
	unsigned state = b[19]; /* 0 down, 1 run, 2 finish */
	if (state == 1 && pid > 0) {
		if (pid != s->attempt_pid) {
			s->attempt_pid = pid;
			s->backoff_ms = 0;
		}
		int execd = runit_execd(pid);
		if (execd < 0) {
			/* gone already: runsv's next status write tells what happened */
			set_last(s, "run, but pid %d has exited", (int)pid);
		} else if (execd == 0) {
			set_last(s, "starting (pid %d)", (int)pid);
			schedule(s, 1, 50);
		} else if (s->has_check) {
			start_check(s);
		} else {
			s->state = SVC_UP;
		}
		return;
	}
	const char *what = state == 2 ? "finish" : "down";
	if (s->attempt_pid)
		svc_fail(s, "exited while starting (runsv reports %s)", what);
	else
		set_last(s, "%s", what);
}

static void describe_wstat(char *out, size_t len, unsigned wstat)
{
	int st = (int)wstat;
	if (WIFEXITED(st))
		snprintf(out, len, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, len, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(out, len, "wait status 0x%x", wstat);
}

static void evaluate_s6(struct svc *s, const unsigned char *b, ssize_t n)
{
	/* 35 bytes: stamp(12) readystamp(12) pid(8) wstat(2) flags(1);
	 * 43 bytes when a pgid(8) follows the pid. Integers are big-endian. */
	if (n != 35 && n != 43) {
		set_last(s, "supervise/status has an unknown format");
		return;
	}
	uint64_t pid = 0;
	for (int i = 24; i < 32; i++)
		pid = pid << 8 | b[i];
	unsigned wstat = (unsigned)b[n - 3] << 8 | b[n - 2];
	unsigned flags = b[n - 1]; /* 1 paused, 2 finishing, 4 want up, 8 ready */
	if (pid) {
		s->attempt_pid = (pid_t)pid;
		if (s->needs_ready && !(flags & 8)) {
			set_last(s, "up (pid %llu), not ready yet", (unsigned long long)pid);
			return;
		}
		s->state = SVC_UP;
		return;
	}
	/* A start attempt ended: one we saw, or one too quick to see, which left
	 * its wait status (s6-supervise's first status has none). */
	if (s->attempt_pid || wstat) {
		char why[64];
		describe_wstat(why, sizeof(why), wstat);
		svc_fail(s, "went down before it was ready (%s)", why);
	} else {
		set_last(s, "down");
	}
}

static void evaluate(struct svc *s)
{
	s->dirty = false;
	if (s->state != SVC_WAITING || s->check_pid)
		return;
	int fd = openat(s->dirfd, "supervise/status", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			die_sys("open supervise/status");
		set_last(s, "not started by the supervisor yet");
		return;
	}
	struct stat st;
	unsigned char buf[64];
	if (fstat(fd, &st) < 0)
		die_sys("fstat supervise/status");
	ssize_t n = read(fd, buf, sizeof(buf));
	int saved = errno;
	close(fd);
	if (n < 0) {
		errno = saved;
		die_sys("read supervise/status");
	}
	if (!fresh(&st)) {
		set_last(s, "not started by the supervisor yet (old status)");
		return;
	}
	if (kind == KIND_RUNIT)
		evaluate_runit(s, buf, n);
	else
		evaluate_s6(s, buf, n);
}

static struct svc *svc_by_wd(int wd)
{
	for (size_t i = 0; i < nsvcs; i++)
		if (svcs[i].wd_dir == wd || svcs[i].wd_sup == wd)
			return &svcs[i];
	return NULL;
}

static struct svc *svc_by_check(pid_t pid)
{
	for (size_t i = 0; i < nsvcs; i++)
		if (svcs[i].check_pid == pid)
			return &svcs[i];
	return NULL;
}

static void handle_inotify(void)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(ino_fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN)
				return;
			if (errno == EINTR)
				continue;
			die_sys("read inotify");
		}
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				for (size_t i = 0; i < nsvcs; i++) {
					watch_supervise(&svcs[i]);
					svcs[i].dirty = true;
				}
				continue;
			}
			struct svc *s = svc_by_wd(ev->wd);
			if (!s)
				continue;
			if (ev->mask & IN_IGNORED) {
				if (ev->wd == s->wd_sup)
					s->wd_sup = -1;
				else
					s->wd_dir = -1;
				continue;
			}
			if (ev->wd == s->wd_dir && ev->len && !strcmp(ev->name, "supervise")) {
				watch_supervise(s);
				s->dirty = true;
			} else if (ev->wd == s->wd_sup && ev->len && !strcmp(ev->name, "status")) {
				s->dirty = true;
			}
		}
	}
}

static void handle_children(int sfd)
{
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		struct svc *s = svc_by_check(pid);
		if (!s)
			continue;
		s->check_pid = 0;
		if (s->state != SVC_WAITING)
			continue;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			s->state = SVC_UP;
		} else {
			/* not available yet: read the status again after a pause */
			set_last(s, "run, ./check fails");
			schedule(s, 10, 250);
		}
	}
}

static void kill_checks(void)
{
	for (size_t i = 0; i < nsvcs; i++)
		if (svcs[i].check_pid > 0)
			kill(svcs[i].check_pid, SIGKILL);
}

/* Lists the services to wait for; returns false if DIR does not exist. */
static bool load_services(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return false;
		die_sys(dir);
	}
	DIR *d = fdopendir(dfd);
	if (!d)
		die_sys("fdopendir");
	size_t cap = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		struct stat st;
		if (fstatat(dfd, de->d_name, &st, 0) < 0 || !S_ISDIR(st.st_mode))
			continue;
		int sfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sfd < 0) {
			fprintf(stderr, PROG ": %s/%s: %s\n", dir, de->d_name, strerror(errno));
			continue;
		}
		if (faccessat(sfd, "down", F_OK, 0) == 0) {
			close(sfd); /* not started automatically: nothing to wait for */
			continue;
		}
		if (nsvcs == MAX_SERVICES) {
			fprintf(stderr, PROG ": %s: more than %d services, not waiting for the rest\n",
				dir, MAX_SERVICES);
			close(sfd);
			break;
		}
		if (nsvcs == cap) {
			cap = cap ? cap * 2 : 16;
			struct svc *n = realloc(svcs, cap * sizeof(*svcs));
			if (!n)
				die_sys("realloc");
			svcs = n;
		}
		struct svc *s = &svcs[nsvcs++];
		memset(s, 0, sizeof(*s));
		s->name = strdup(de->d_name);
		size_t plen = strlen(dir) + strlen(de->d_name) + 2;
		s->path = malloc(plen);
		if (!s->name || !s->path)
			die_sys("malloc");
		snprintf(s->path, plen, "%s/%s", dir, de->d_name);
		s->dirfd = sfd;
		s->wd_dir = s->wd_sup = -1;
		s->dirty = true;
		if (kind == KIND_RUNIT)
			s->has_check = faccessat(sfd, "check", X_OK, 0) == 0;
		else
			s->needs_ready = faccessat(sfd, "notification-fd", F_OK, 0) == 0;
		if (faccessat(sfd, "run", X_OK, 0) < 0)
			svc_fail(s, "./run is missing or not executable (%s)", strerror(errno));
		if (s->state == SVC_WAITING)
			set_last(s, "not started yet");
		errno = 0;
	}
	if (errno)
		die_sys("readdir");
	closedir(d);
	return true;
}

int main(int argc, char **argv)
{
	helper_version(argc, argv, PROG);
	const char *dir = NULL;
	unsigned long timeout = 60;
	bool have_kind = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runit")) {
			kind = KIND_RUNIT;
			have_kind = true;
		} else if (!strcmp(argv[i], "--s6")) {
			kind = KIND_S6;
			have_kind = true;
		} else if (!strcmp(argv[i], "--since") && i + 1 < argc) {
			if (!parse_since(argv[++i], &since))
				usage();
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			char *end;
			errno = 0;
			timeout = strtoul(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || timeout == 0 || timeout > 86400)
				usage();
		} else if (argv[i][0] != '-' && !dir) {
			dir = argv[i];
		} else {
			usage();
		}
	}
	if (!have_kind || !dir)
		usage();
	uint64_t deadline = now_ms() + timeout * 1000;

	ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ino_fd < 0)
		die_sys("inotify_init1");
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0)
		die_sys("sigprocmask");
	int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die_sys("signalfd");

	if (!load_services(dir))
		return 0; /* no scan directory: nothing to wait for */

	/* Watch first, then read: a status written in between is not missed. */
	for (size_t i = 0; i < nsvcs; i++) {
		struct svc *s = &svcs[i];
		if (s->state != SVC_WAITING)
			continue;
		s->wd_dir = inotify_add_watch(ino_fd, s->path, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
		if (s->wd_dir < 0)
			die_sys("inotify_add_watch");
		watch_supervise(s);
	}

	for (;;) {
		uint64_t now = now_ms();
		size_t waiting = 0;
		for (size_t i = 0; i < nsvcs; i++) {
			struct svc *s = &svcs[i];
			if (s->retry_at && s->retry_at <= now) {
				s->retry_at = 0;
				s->dirty = true;
			}
			if (s->dirty)
				evaluate(s);
			if (s->state == SVC_FAILED) {
				fprintf(stderr, PROG ": %s: %s\n", s->path, s->last);
				kill_checks();
				return 1;
			}
			if (s->state == SVC_WAITING)
				waiting++;
		}
		if (!waiting)
			return 0;
		now = now_ms();
		if (now >= deadline) {
			for (size_t i = 0; i < nsvcs; i++)
				if (svcs[i].state == SVC_WAITING)
					fprintf(stderr, PROG ": %s: not up after %lu s (%s)\n",
						svcs[i].path, timeout, svcs[i].last);
			kill_checks();
			return 1;
		}
		uint64_t wake = deadline;
		for (size_t i = 0; i < nsvcs; i++)
			if (svcs[i].retry_at && svcs[i].retry_at < wake)
				wake = svcs[i].retry_at;
		int wait_ms = wake > now ? (int)(wake - now) : 0;
		struct pollfd pfd[2] = { { .fd = ino_fd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN } };
		if (poll(pfd, 2, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			die_sys("poll");
		}
		if (pfd[0].revents)
			handle_inotify();
		if (pfd[1].revents)
			handle_children(sfd);
	}
}
