/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pamloop: the benchmark's login driver. Runs real PAM sessions through
 * libpam (pam_start, pam_open_session, pam_close_session, pam_end) against
 * whatever session stack /etc/pam.d/SERVICE holds, and prints what it
 * measured as one JSON object on stdout. Times are CLOCK_MONOTONIC
 * nanoseconds. bench/run builds it (cc ... -lpam) and runs it inside the
 * benchmark sandbox as root.
 *
 *   pamloop warm SERVICE USER N WARMUP [FLOOR_SOCKET]
 *       A child opens one session of USER and keeps it (the manager stays
 *       up; another process's, as a real login's would be), this process
 *       keeps one unopened handle (the stack's modules stay loaded), then
 *       runs N timed iterations (after WARMUP untimed ones) of pam_start,
 *       pam_open_session, pam_close_session, pam_end. Prints the four
 *       per-iteration durations as arrays. With FLOOR_SOCKET, each
 *       iteration is followed by two exchanges on fresh connections with
 *       the floor's server (see floor), timed together (floor2_ns): the
 *       transport of an open + close, measured under the same load.
 *
 *   pamloop cold SERVICE GONE_TIMEOUT_MS HOLD_MS USER...
 *       For each USER in turn (each must have no session and no manager):
 *       times the first pam_open_session; finds the user's processes; keeps
 *       the session HOLD_MS (untimed: runsv sleeps 1 s after a service that
 *       ran less than 1 s, which no real session hits); times
 *       pam_close_session; then waits until every one of those processes
 *       has exited ("manager gone", pidfd) and until the runtime directory
 *       the login got (XDG_RUNTIME_DIR) has been removed (inotify). A
 *       failed open counts as a failure and its time as -1.
 *
 *   pamloop spawn USER READY N HOLD_MS [NAME=VALUE...] -- ARGV... [++ WAITER...]
 *       The manager's own start, without any daemon: N times, forks ARGV as
 *       USER (setsid, initgroups, setgid, setuid, chdir home, environment
 *       NAME=VALUE only) and times fork -> ready, where READY is
 *       fifo:PATH (a line written to the FIFO PATH, which is created here),
 *       waiter (WAITER, run the same way, exits 0) or exit (ARGV exits 0).
 *       Then, HOLD_MS later, sends SIGTERM to ARGV's process and times until
 *       every process of USER has exited; the next start follows 100 ms on. "@NOW@" in any argument becomes the realtime
 *       clock as SEC.NSEC at the fork.
 *
 *   pamloop scale SERVICE SESSIONS ITERS DAEMON_PID CHECKPOINTS PROBE USER...
 *       Opens SESSIONS sessions for each USER in turn, all kept open. After
 *       the k-th user for each k in CHECKPOINTS (comma-separated), measures
 *       ITERS warm iterations (an extra session of the first user) and ITERS
 *       first logins of PROBE (open + close; PROBE holds nothing else), and
 *       reads DAEMON_PID's RSS, fd count and CPU time. Then closes every
 *       session and reads them again.
 *
 *   pamloop floor SOCKET N
 *       The machine's floor for one exchange, without PAM or the daemon: a
 *       forked epoll server on a SOCK_SEQPACKET socket at SOCKET answers
 *       each 512-byte request with a 512-byte reply. Times N exchanges on
 *       a fresh connection each (socket, connect, send, poll, recv, close:
 *       what the module does per request) and N on one kept connection.
 *
 *   pamloop keeper USER ROUNDS [--preload] SERVICE...
 *       What the daemon's keeper does for a manager's PAM session, per
 *       SERVICE: ROUNDS rounds, each forking one fresh child per SERVICE (in
 *       an order rotated every round, so that all see the same load); the
 *       child times pam_start, pam_acct_mgmt, pam_setcred(ESTABLISH) and
 *       pam_open_session ("open": modules are loaded here, in a process
 *       that has not loaded them, as in a keeper forked by the daemon), then
 *       pam_close_session, pam_setcred(DELETE) and pam_end ("close").
 *       Prints open_ns and close_ns per SERVICE (-1: a call failed). With
 *       --preload, this process first calls pam_start on every SERVICE and
 *       keeps the handles (their modules stay loaded, as a daemon that held
 *       one handle would have them), so that the children inherit them.
 *
 *   pamloop burst SERVICE TIMEOUT_S USER...
 *       Forks one process per USER; each does pam_start, then all wait on
 *       one barrier; at its release each calls pam_open_session. Reports
 *       each login's time from the release to its return, then closes all
 *       sessions the same way. A login not done within TIMEOUT_S counts as
 *       failed (-1); its process is killed at the end.
 *
 * Exit status: 0 when the run completed (individual PAM failures are
 * counted in the output), 1 on a setup error, 2 on bad usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_appl.h>

#define MAX_PROCS 4096

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

__attribute__((noreturn)) static void die(const char *what)
{
	fprintf(stderr, "pamloop: %s: %s\n", what, strerror(errno));
	exit(1);
}

__attribute__((noreturn)) static void usage(void)
{
	fprintf(stderr, "usage: pamloop warm|cold|spawn|scale|floor|burst|keeper ... (see the source)\n");
	exit(2);
}

static int conv_none(int n, const struct pam_message **msg, struct pam_response **resp,
	void *data)
{
	(void)n;
	(void)msg;
	(void)resp;
	(void)data;
	return PAM_CONV_ERR; /* session modules have nobody to ask */
}

static const struct pam_conv conv = {conv_none, NULL};

/* ---- JSON output ------------------------------------------------------ */

static void json_array(const char *name, const int64_t *v, size_t n, bool last)
{
	printf("\"%s\":[", name);
	for (size_t i = 0; i < n; i++)
		printf("%s%" PRId64, i ? "," : "", v[i]);
	printf("]%s\n", last ? "" : ",");
}

static int64_t *samples(size_t n)
{
	int64_t *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		die("calloc");
	return v;
}

/* ---- processes of a user ---------------------------------------------- */

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Real uid of pid from /proc/PID/status; -1 when gone or a zombie. */
static long proc_uid(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	long uid = -1;
	while (fgets(line, sizeof(line), f)) {
		char st;
		if (sscanf(line, "State: %c", &st) == 1 && (st == 'Z' || st == 'X'))
			break;
		unsigned v;
		if (sscanf(line, "Uid: %u", &v) == 1) {
			uid = v;
			break;
		}
	}
	fclose(f);
	return uid;
}

/* Pids of every live process whose real uid is uid (at most max). */
static size_t user_procs(uid_t uid, pid_t *out, size_t max)
{
	DIR *d = opendir("/proc");
	if (!d)
		die("opendir /proc");
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		if (proc_uid((pid_t)pid) == (long)uid)
			out[n++] = (pid_t)pid;
	}
	closedir(d);
	return n;
}

struct gone_watch {
	int pidfds[MAX_PROCS];
	size_t npids;
	int inotify_fd;   /* -1: no runtime dir to watch */
	char rundir_name[NAME_MAX + 1];
};

/* Open pidfds on every process of uid, and watch rundir's removal. */
static void gone_prepare(struct gone_watch *w, uid_t uid, const char *rundir)
{
	pid_t pids[MAX_PROCS];
	size_t n = user_procs(uid, pids, MAX_PROCS);
	w->npids = 0;
	for (size_t i = 0; i < n; i++) {
		int fd = pidfd_open_(pids[i]);
		if (fd >= 0)
			w->pidfds[w->npids++] = fd;
	}
	w->inotify_fd = -1;
	struct stat st;
	if (!rundir || rundir[0] != '/' || lstat(rundir, &st) < 0 || !S_ISDIR(st.st_mode))
		return;
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", rundir);
	char *slash = strrchr(parent, '/');
	snprintf(w->rundir_name, sizeof(w->rundir_name), "%s", slash + 1);
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	w->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (w->inotify_fd < 0)
		die("inotify_init1");
	if (inotify_add_watch(w->inotify_fd, parent, IN_DELETE | IN_MOVED_FROM) < 0)
		die("inotify_add_watch");
	/* Removed between the stat and the watch: nothing to wait for. */
	if (lstat(rundir, &st) < 0) {
		close(w->inotify_fd);
		w->inotify_fd = -1;
	}
}

/*
 * Wait (until deadline) for every watched process to exit and for the
 * runtime dir's removal. *procs_ns / *rundir_ns: time from t0 to each, or
 * -1 when it did not happen in time (0 procs watched: 0; no rundir: -2).
 * Afterwards checks that no process of uid is left (*left).
 */
static void gone_wait(struct gone_watch *w, int64_t t0, int64_t deadline, uid_t uid,
	int64_t *procs_ns, int64_t *rundir_ns, size_t *left)
{
	size_t live = w->npids;
	bool rundir_live = w->inotify_fd >= 0;
	*procs_ns = live ? -1 : 0;
	*rundir_ns = rundir_live ? -1 : -2;
	struct pollfd pfd[MAX_PROCS + 1];
	while (live || rundir_live) {
		size_t n = 0;
		for (size_t i = 0; i < w->npids; i++) {
			if (w->pidfds[i] < 0)
				continue;
			pfd[n].fd = w->pidfds[i];
			pfd[n].events = POLLIN;
			n++;
		}
		if (rundir_live) {
			pfd[n].fd = w->inotify_fd;
			pfd[n].events = POLLIN;
			n++;
		}
		int64_t left_ns = deadline - now_ns();
		if (left_ns <= 0)
			break;
		int r = poll(pfd, n, (int)(left_ns / 1000000) + 1);
		int64_t t = now_ns();
		if (r < 0 && errno != EINTR)
			die("poll");
		for (size_t i = 0; r > 0 && i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == w->inotify_fd && rundir_live) {
				char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
				ssize_t len;
				while ((len = read(w->inotify_fd, buf, sizeof(buf))) > 0) {
					for (char *p = buf; p < buf + len;) {
						struct inotify_event *ev = (struct inotify_event *)p;
						if (ev->len && !strcmp(ev->name, w->rundir_name)) {
							rundir_live = false;
							*rundir_ns = t - t0;
						}
						p += sizeof(*ev) + ev->len;
					}
				}
				continue;
			}
			for (size_t j = 0; j < w->npids; j++) {
				if (w->pidfds[j] == pfd[i].fd) {
					close(w->pidfds[j]);
					w->pidfds[j] = -1;
					if (--live == 0)
						*procs_ns = t - t0;
				}
			}
		}
	}
	for (size_t i = 0; i < w->npids; i++)
		if (w->pidfds[i] >= 0)
			close(w->pidfds[i]);
	if (w->inotify_fd >= 0)
		close(w->inotify_fd);
	pid_t pids[MAX_PROCS];
	*left = user_procs(uid, pids, MAX_PROCS);
}

/* ---- daemon statistics ------------------------------------------------ */

struct proc_stats {
	long rss_kib, hwm_kib;
	long fds;
	int64_t cpu_ms; /* user + system */
};

static void proc_stats_read(pid_t pid, struct proc_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->rss_kib = s->hwm_kib = s->fds = s->cpu_ms = -1;
	if (pid <= 0)
		return;
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			sscanf(line, "VmRSS: %ld", &s->rss_kib);
			sscanf(line, "VmHWM: %ld", &s->hwm_kib);
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (d) {
		s->fds = 0;
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				s->fds++;
		closedir(d);
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f) {
		char buf[2048];
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		char *p = strrchr(buf, ')');
		unsigned long ut = 0, st = 0;
		/* after ')': state(3) ... utime(14) stime(15) */
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				 &ut, &st) == 2)
			s->cpu_ms = (int64_t)(ut + st) * 1000 / sysconf(_SC_CLK_TCK);
		fclose(f);
	}
}

static void proc_stats_print(const char *name, const struct proc_stats *s, bool last)
{
	printf("\"%s\":{\"rss_kib\":%ld,\"hwm_kib\":%ld,\"fds\":%ld,\"cpu_ms\":%" PRId64 "}%s\n",
		name, s->rss_kib, s->hwm_kib, s->fds, s->cpu_ms, last ? "" : ",");
}

/* ---- sessions ---------------------------------------------------------- */

struct login {
	pam_handle_t *h;
	bool open;
};

static int login_start(struct login *l, const char *service, const char *user)
{
	l->h = NULL;
	l->open = false;
	int r = pam_start(service, user, &conv, &l->h);
	if (r != PAM_SUCCESS)
		l->h = NULL;
	return r;
}

static int login_open(struct login *l)
{
	int r = pam_open_session(l->h, 0);
	l->open = r == PAM_SUCCESS;
	return r;
}

static int login_close(struct login *l)
{
	int r = PAM_SUCCESS;
	if (l->open)
		r = pam_close_session(l->h, 0);
	l->open = false;
	return r;
}

static void login_end(struct login *l, int status)
{
	if (l->h)
		pam_end(l->h, status);
	l->h = NULL;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ---- warm --------------------------------------------------------------- */

static pid_t floor_start(const char *path, struct sockaddr_un *addr);
static void floor_stop(pid_t pid, const struct sockaddr_un *addr);
static int floor_fresh(const struct sockaddr_un *addr, unsigned char *buf);
#define FLOOR_MSG 512

/*
 * The session that keeps the manager up belongs to another process, as a
 * real login's would: the daemon watches each login process once, so a
 * holder in this process would spare every measured login its watch. The
 * child holds it until *done is closed.
 */
static pid_t holder_start(const char *service, const char *user, int *done)
{
	int ready[2], wait_done[2];
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(wait_done, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	char c = 'n';
	if (pid == 0) {
		close(ready[0]);
		close(wait_done[1]);
		struct login h;
		int r = login_start(&h, service, user);
		if (r == PAM_SUCCESS)
			r = login_open(&h);
		if (r != PAM_SUCCESS)
			fprintf(stderr, "pamloop: holder session of %s: %s\n", user,
				pam_strerror(h.h, r));
		else
			c = 'y';
		if (write(ready[1], &c, 1) == 1 && c == 'y' && read(wait_done[0], &c, 1) >= 0) {
			login_close(&h);
			login_end(&h, PAM_SUCCESS);
		}
		_exit(0);
	}
	close(ready[1]);
	close(wait_done[0]);
	if (read(ready[0], &c, 1) != 1 || c != 'y') {
		close(wait_done[1]);
		waitpid(pid, NULL, 0);
		pid = -1;
	}
	close(ready[0]);
	*done = wait_done[1];
	return pid;
}

static void holder_stop(pid_t pid, int done)
{
	close(done);
	waitpid(pid, NULL, 0);
}

static int cmd_warm(int argc, char **argv)
{
	if (argc != 4 && argc != 5)
		usage();
	const char *service = argv[0], *user = argv[1];
	long n = atol(argv[2]), warmup = atol(argv[3]);
	if (n <= 0 || warmup < 0)
		usage();
	/* With FLOOR_SOCKET: after each login, two floor exchanges (what the
	 * module's open and close cost without PAM or the daemon), so that
	 * both figures see the same load. */
	struct sockaddr_un faddr;
	pid_t fpid = argc == 5 ? floor_start(argv[4], &faddr) : -1;
	unsigned char fbuf[FLOOR_MSG * 2];
	memset(fbuf, 'x', sizeof(fbuf));
	int64_t *tf = fpid > 0 ? samples((size_t)n) : NULL;
	int holder_done;
	pid_t holder = holder_start(service, user, &holder_done);
	if (holder < 0)
		return 1;
	/* A handle of our own, never opened, keeps the stack's modules loaded
	 * between iterations (as the holder did when it was ours): else every
	 * pam_start loads them afresh and every open runs cold module code. */
	struct login keep;
	if (login_start(&keep, service, user) != PAM_SUCCESS)
		return 1;
	int64_t *ts = samples((size_t)n), *to = samples((size_t)n), *tc = samples((size_t)n),
		*te = samples((size_t)n);
	long failures = 0;
	int64_t wall0 = now_ns();
	for (long i = -warmup; i < n; i++) {
		struct login l;
		int64_t t0 = now_ns();
		int r1 = login_start(&l, service, user);
		int64_t t1 = now_ns();
		int r2 = r1 == PAM_SUCCESS ? login_open(&l) : r1;
		int64_t t2 = now_ns();
		int r3 = r2 == PAM_SUCCESS ? login_close(&l) : r2;
		int64_t t3 = now_ns();
		login_end(&l, r3);
		int64_t t4 = now_ns();
		if (r3 != PAM_SUCCESS)
			failures++;
		int64_t t5 = t4;
		if (tf) {
			if (floor_fresh(&faddr, fbuf) < 0 || floor_fresh(&faddr, fbuf) < 0)
				failures++;
			t5 = now_ns();
		}
		if (i >= 0) {
			ts[i] = t1 - t0;
			to[i] = t2 - t1;
			tc[i] = t3 - t2;
			te[i] = t4 - t3;
			if (tf)
				tf[i] = t5 - t4;
		}
	}
	int64_t wall = now_ns() - wall0; /* with the floor's exchanges, if any */
	if (tf)
		floor_stop(fpid, &faddr);
	login_end(&keep, PAM_SUCCESS);
	holder_stop(holder, holder_done);
	printf("{\"mode\":\"warm\",\"iterations\":%ld,\"failures\":%ld,\"wall_ns\":%" PRId64 ",\n",
		n, failures, wall);
	json_array("start_ns", ts, (size_t)n, false);
	json_array("open_ns", to, (size_t)n, false);
	json_array("close_ns", tc, (size_t)n, false);
	if (tf)
		json_array("floor2_ns", tf, (size_t)n, false);
	json_array("end_ns", te, (size_t)n, true);
	printf("}\n");
	return 0;
}

/* ---- cold + logout ------------------------------------------------------ */

static int cmd_cold(int argc, char **argv)
{
	if (argc < 4)
		usage();
	const char *service = argv[0];
	int64_t gone_timeout = atol(argv[1]) * (int64_t)1000000;
	long hold_ms = atol(argv[2]);
	size_t n = (size_t)(argc - 3);
	char **users = argv + 3;
	int64_t *open_ns = samples(n), *close_ns = samples(n), *procs_ns = samples(n),
		*rundir_ns = samples(n), *nprocs = samples(n), *left = samples(n);
	long failures = 0;
	for (size_t i = 0; i < n; i++) {
		struct passwd *pw = getpwnam(users[i]);
		if (!pw) {
			fprintf(stderr, "pamloop: no user %s\n", users[i]);
			return 1;
		}
		uid_t uid = pw->pw_uid;
		struct login l;
		int r = login_start(&l, service, users[i]);
		int64_t t0 = now_ns();
		if (r == PAM_SUCCESS)
			r = login_open(&l);
		int64_t t1 = now_ns();
		open_ns[i] = t1 - t0;
		if (r != PAM_SUCCESS) {
			fprintf(stderr, "pamloop: open %s: %s\n", users[i], pam_strerror(l.h, r));
			failures++;
			open_ns[i] = -1; /* no figure for a failed login */
		}
		const char *rd = l.h ? pam_getenv(l.h, "XDG_RUNTIME_DIR") : NULL;
		char rundir[PATH_MAX] = "";
		if (rd)
			snprintf(rundir, sizeof(rundir), "%s", rd);
		static struct gone_watch w;
		gone_prepare(&w, uid, rundir);
		nprocs[i] = (int64_t)w.npids;
		if (hold_ms > 0)
			usleep((useconds_t)hold_ms * 1000);
		int64_t t2 = now_ns();
		int rc = login_close(&l);
		int64_t t3 = now_ns();
		login_end(&l, rc);
		close_ns[i] = t3 - t2;
		if (rc != PAM_SUCCESS)
			failures++;
		size_t nleft;
		gone_wait(&w, t2, t2 + gone_timeout, uid, &procs_ns[i], &rundir_ns[i], &nleft);
		left[i] = (int64_t)nleft;
		if (nleft) {
			/* Something the watch missed (started after the scan):
			 * wait for it too, so the next user starts clean. */
			pid_t pids[MAX_PROCS];
			while (now_ns() < t2 + gone_timeout && user_procs(uid, pids, MAX_PROCS))
				usleep(1000);
		}
	}
	printf("{\"mode\":\"cold\",\"users\":%zu,\"failures\":%ld,\n", n, failures);
	json_array("open_ns", open_ns, n, false);
	json_array("close_ns", close_ns, n, false);
	json_array("procs", nprocs, n, false);
	json_array("procs_gone_ns", procs_ns, n, false);
	json_array("rundir_gone_ns", rundir_ns, n, false);
	json_array("left_after", left, n, true);
	printf("}\n");
	return 0;
}

/* ---- spawn: the manager's own start ------------------------------------- */

struct spawn_spec {
	struct passwd pw;
	char **env;
	char **argv;
	char **waiter;
};

static char **args_with_now(char **argv)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char now[64];
	snprintf(now, sizeof(now), "%lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
	size_t n = 0;
	while (argv[n])
		n++;
	char **out = calloc(n + 1, sizeof(*out));
	if (!out)
		die("calloc");
	for (size_t i = 0; i < n; i++)
		out[i] = strcmp(argv[i], "@NOW@") ? argv[i] : strdup(now);
	return out;
}

static pid_t spawn_as(const struct spawn_spec *s, char **argv)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid > 0)
		return pid;
	int null = open("/dev/null", O_RDWR);
	if (setsid() < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
		dup2(null, 2) < 0 ||
		initgroups(s->pw.pw_name, s->pw.pw_gid) < 0 || setgid(s->pw.pw_gid) < 0 ||
		setuid(s->pw.pw_uid) < 0 || chdir(s->pw.pw_dir) < 0)
		_exit(126);
	if (null > 2)
		close(null);
	environ = s->env;
	execvp(argv[0], argv);
	_exit(127);
}

static int cmd_spawn(int argc, char **argv)
{
	if (argc < 6)
		usage();
	struct spawn_spec s;
	struct passwd *pw = getpwnam(argv[0]);
	if (!pw) {
		fprintf(stderr, "pamloop: no user %s\n", argv[0]);
		return 1;
	}
	s.pw = *pw;
	s.pw.pw_name = strdup(pw->pw_name);
	s.pw.pw_dir = strdup(pw->pw_dir);
	const char *ready = argv[1];
	long reps = atol(argv[2]), hold_ms = atol(argv[3]);
	int i = 4;
	s.env = calloc((size_t)argc + 1, sizeof(char *));
	size_t ne = 0;
	for (; i < argc && strcmp(argv[i], "--"); i++)
		s.env[ne++] = argv[i];
	if (i >= argc || reps <= 0)
		usage();
	s.argv = argv + i + 1;
	s.waiter = NULL;
	for (int j = i + 1; j < argc; j++) {
		if (!strcmp(argv[j], "++")) {
			argv[j] = NULL;
			s.waiter = argv + j + 1;
			break;
		}
	}
	const char *fifo = !strncmp(ready, "fifo:", 5) ? ready + 5 : NULL;
	bool by_waiter = !strcmp(ready, "waiter"), by_exit = !strcmp(ready, "exit");
	if (!fifo && !by_exit && !(by_waiter && s.waiter))
		usage();

	int64_t *start_ns = samples((size_t)reps), *stop_ns = samples((size_t)reps),
		*nprocs = samples((size_t)reps);
	long failures = 0;
	for (long k = 0; k < reps; k++) {
		int rfd = -1, keep = -1;
		if (fifo) {
			unlink(fifo);
			if (mkfifo(fifo, 0600) < 0 || chown(fifo, s.pw.pw_uid, s.pw.pw_gid) < 0)
				die("mkfifo");
			rfd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			keep = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
			if (rfd < 0 || keep < 0)
				die("open fifo");
		}
		char **args = args_with_now(s.argv);
		char **wargs = s.waiter ? args_with_now(s.waiter) : NULL;
		int64_t t0 = now_ns();
		pid_t pid = spawn_as(&s, args);
		pid_t wpid = by_waiter ? spawn_as(&s, wargs) : 0;
		bool ok = true;
		if (fifo) {
			struct pollfd p = {.fd = rfd, .events = POLLIN};
			char buf[256];
			ok = poll(&p, 1, 60000) == 1 && read(rfd, buf, sizeof(buf)) > 0;
		} else {
			int st;
			pid_t w = by_waiter ? wpid : pid;
			ok = waitpid(w, &st, 0) == w && WIFEXITED(st) && WEXITSTATUS(st) == 0;
		}
		int64_t t1 = now_ns();
		start_ns[k] = ok ? t1 - t0 : -1;
		if (!ok)
			failures++;
		if (rfd >= 0)
			close(rfd);
		if (keep >= 0)
			close(keep);
		if (hold_ms > 0)
			usleep((useconds_t)hold_ms * 1000);
		static struct gone_watch w;
		gone_prepare(&w, s.pw.pw_uid, NULL);
		nprocs[k] = (int64_t)w.npids;
		int64_t t2 = now_ns();
		if (!by_exit)
			kill(pid, SIGTERM);
		int64_t rd;
		size_t left;
		gone_wait(&w, t2, t2 + 30 * (int64_t)1000000000, s.pw.pw_uid, &stop_ns[k], &rd, &left);
		if (left) { /* stragglers: the next start must begin clean */
			pid_t pids[MAX_PROCS];
			size_t n = user_procs(s.pw.pw_uid, pids, MAX_PROCS);
			for (size_t j = 0; j < n; j++)
				kill(pids[j], SIGKILL);
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		free(args);
		free(wargs);
		usleep(100000);
	}
	while (waitpid(-1, NULL, 0) > 0)
		;
	printf("{\"mode\":\"spawn\",\"reps\":%ld,\"failures\":%ld,\n", reps, failures);
	json_array("start_ns", start_ns, (size_t)reps, false);
	json_array("procs", nprocs, (size_t)reps, false);
	json_array("stop_ns", stop_ns, (size_t)reps, true);
	printf("}\n");
	return 0;
}

/* ---- scale ------------------------------------------------------------- */

static bool is_checkpoint(const char *list, long k)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
		if (atol(tok) == k)
			return true;
	return false;
}

static int cmd_scale(int argc, char **argv)
{
	if (argc < 7)
		usage();
	const char *service = argv[0];
	long nsess = atol(argv[1]), iters = atol(argv[2]);
	pid_t dpid = (pid_t)atol(argv[3]);
	const char *checkpoints = argv[4], *probe = argv[5];
	long nusers = argc - 6;
	char **users = argv + 6;
	if (nsess <= 0 || iters <= 0)
		usage();
	raise_nofile();
	size_t total = (size_t)(nusers * nsess);
	struct login *ls = calloc(total, sizeof(*ls));
	int64_t *first_open = samples((size_t)nusers), *more_open = samples(total),
		*close_ns = samples(total);
	size_t nmore = 0;
	long failures = 0;
	struct proc_stats st0;
	proc_stats_read(dpid, &st0);
	printf("{\"mode\":\"scale\",\"users\":%ld,\"sessions_per_user\":%ld,\"iterations\":%ld,\n",
		nusers, nsess, iters);
	proc_stats_print("daemon_before", &st0, false);
	printf("\"checkpoints\":[\n");
	bool first_cp = true;
	int64_t fill0 = now_ns();
	for (long u = 0; u < nusers; u++) {
		for (long s = 0; s < nsess; s++) {
			struct login *l = &ls[u * nsess + s];
			int r = login_start(l, service, users[u]);
			int64_t t0 = now_ns();
			if (r == PAM_SUCCESS)
				r = login_open(l);
			int64_t t = now_ns() - t0;
			if (r != PAM_SUCCESS)
				failures++;
			if (s == 0)
				first_open[u] = t;
			else
				more_open[nmore++] = t;
		}
		if (!is_checkpoint(checkpoints, u + 1))
			continue;
		struct proc_stats a, b;
		proc_stats_read(dpid, &a);
		int64_t *wo = samples((size_t)iters), *wc = samples((size_t)iters),
			*po = samples((size_t)iters), *pc = samples((size_t)iters);
		for (long i = 0; i < iters; i++) {
			struct login l;
			int r = login_start(&l, service, users[0]);
			int64_t t0 = now_ns();
			if (r == PAM_SUCCESS)
				r = login_open(&l);
			int64_t t1 = now_ns();
			int rc = r == PAM_SUCCESS ? login_close(&l) : r;
			int64_t t2 = now_ns();
			login_end(&l, rc);
			wo[i] = t1 - t0;
			wc[i] = t2 - t1;
			if (rc != PAM_SUCCESS)
				failures++;
		}
		for (long i = 0; i < iters; i++) {
			struct login l;
			int r = login_start(&l, service, probe);
			int64_t t0 = now_ns();
			if (r == PAM_SUCCESS)
				r = login_open(&l);
			int64_t t1 = now_ns();
			int rc = r == PAM_SUCCESS ? login_close(&l) : r;
			int64_t t2 = now_ns();
			login_end(&l, rc);
			po[i] = t1 - t0;
			pc[i] = t2 - t1;
			if (rc != PAM_SUCCESS)
				failures++;
		}
		proc_stats_read(dpid, &b);
		printf("%s{\"users\":%ld,\"sessions\":%ld,\n", first_cp ? "" : ",", u + 1,
			(u + 1) * nsess);
		first_cp = false;
		proc_stats_print("daemon", &a, false);
		printf("\"daemon_cpu_ms_during_probe\":%" PRId64 ",\n", b.cpu_ms - a.cpu_ms);
		json_array("warm_open_ns", wo, (size_t)iters, false);
		json_array("warm_close_ns", wc, (size_t)iters, false);
		json_array("first_open_ns", po, (size_t)iters, false);
		json_array("first_close_ns", pc, (size_t)iters, true);
		printf("}\n");
		free(wo);
		free(wc);
		free(po);
		free(pc);
	}
	int64_t fill = now_ns() - fill0;
	printf("],\n");
	struct proc_stats full;
	proc_stats_read(dpid, &full);
	int64_t c0 = now_ns();
	for (size_t i = 0; i < total; i++) {
		int64_t t0 = now_ns();
		int r = login_close(&ls[i]);
		close_ns[i] = now_ns() - t0;
		if (r != PAM_SUCCESS)
			failures++;
		login_end(&ls[i], r);
	}
	int64_t drain = now_ns() - c0;
	struct proc_stats after;
	proc_stats_read(dpid, &after);
	printf("\"failures\":%ld,\"fill_ns\":%" PRId64 ",\"drain_ns\":%" PRId64 ",\n", failures,
		fill, drain);
	proc_stats_print("daemon_full", &full, false);
	proc_stats_print("daemon_after", &after, false);
	json_array("user_first_open_ns", first_open, (size_t)nusers, false);
	json_array("more_open_ns", more_open, nmore, false);
	json_array("close_ns", close_ns, total, true);
	printf("}\n");
	return 0;
}


/* ---- floor: one exchange on this machine -------------------------------- */

static void floor_server(int lfd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		_exit(1);
	unsigned char buf[FLOOR_MSG * 2];
	for (;;) {
		struct epoll_event evs[16];
		int n = epoll_wait(ep, evs, 16, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c;
				while ((c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
					struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
				}
				continue;
			}
			ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r > 0) {
				if (send(fd, buf, FLOOR_MSG, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
					r = 0;
			}
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				close(fd);
			}
		}
	}
}

static int floor_exchange(int fd, unsigned char *buf)
{
	if (send(fd, buf, FLOOR_MSG, MSG_NOSIGNAL) != FLOOR_MSG)
		return -1;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		return -1;
	return recv(fd, buf, FLOOR_MSG * 2, MSG_DONTWAIT) == FLOOR_MSG ? 0 : -1;
}

/* Fork the floor's server on a socket at path; its pid. */
static pid_t floor_start(const char *path, struct sockaddr_un *addr)
{
	*addr = (struct sockaddr_un){.sun_family = AF_UNIX};
	snprintf(addr->sun_path, sizeof(addr->sun_path), "%s", path);
	unlink(addr->sun_path);
	int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)addr, sizeof(*addr)) < 0 ||
		listen(lfd, 128) < 0)
		die("floor socket");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		/* bench/run --pin: the floor's server on the daemon's CPU. */
		const char *cpu = getenv("PAMLOOP_SERVER_CPU");
		if (cpu && *cpu) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(atoi(cpu), &set);
			if (sched_setaffinity(0, sizeof(set), &set) < 0)
				die("sched_setaffinity");
		}
		floor_server(lfd);
	}
	close(lfd);
	return pid;
}

static void floor_stop(pid_t pid, const struct sockaddr_un *addr)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(addr->sun_path);
}

/* One exchange on a fresh connection, as the module makes it. */
static int floor_fresh(const struct sockaddr_un *addr, unsigned char *buf)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int r = fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 ? -1 :
		floor_exchange(fd, buf);
	if (fd >= 0)
		close(fd);
	return r;
}

static int cmd_floor(int argc, char **argv)
{
	if (argc != 2)
		usage();
	struct sockaddr_un addr;
	long n = atol(argv[1]);
	if (n <= 0)
		usage();
	pid_t pid = floor_start(argv[0], &addr);
	unsigned char buf[FLOOR_MSG * 2];
	memset(buf, 'x', sizeof(buf));
	int64_t *fresh = samples((size_t)n), *kept = samples((size_t)n);
	long failures = 0;
	for (long i = -n / 10; i < n; i++) {
		int64_t t0 = now_ns();
		int r = floor_fresh(&addr, buf);
		if (r < 0)
			failures++;
		if (i >= 0)
			fresh[i] = now_ns() - t0;
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("connect");
	for (long i = -n / 10; i < n; i++) {
		int64_t t0 = now_ns();
		if (floor_exchange(fd, buf) < 0)
			failures++;
		if (i >= 0)
			kept[i] = now_ns() - t0;
	}
	close(fd);
	floor_stop(pid, &addr);
	printf("{\"mode\":\"floor\",\"iterations\":%ld,\"failures\":%ld,\n", n, failures);
	json_array("fresh_connection_ns", fresh, (size_t)n, false);
	json_array("kept_connection_ns", kept, (size_t)n, true);
	printf("}\n");
	return 0;
}

/* ---- burst ------------------------------------------------------------- */

struct burst_rec {
	int32_t index;
	int32_t ok;
	int64_t end_ns;
};

/* Read up to n records (until deadline) into out[index] = end - t0. */
static size_t burst_collect(int fd, int64_t *out, size_t n, int64_t t0, int64_t deadline,
	long *failed)
{
	size_t got = 0;
	while (got < n) {
		int64_t left = deadline - now_ns();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)(left / 1000000) + 1) <= 0)
			break;
		struct burst_rec rec;
		if (read(fd, &rec, sizeof(rec)) != sizeof(rec))
			break;
		got++;
		if (!rec.ok) {
			(*failed)++;
			continue;
		}
		out[rec.index] = rec.end_ns - t0;
	}
	return got;
}

static int64_t burst_wall(const int64_t *v, size_t n)
{
	int64_t m = -1;
	for (size_t i = 0; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

static int cmd_burst(int argc, char **argv)
{
	if (argc < 3)
		usage();
	const char *service = argv[0];
	int64_t timeout = atol(argv[1]) * (int64_t)1000000000;
	size_t n = (size_t)(argc - 2);
	char **users = argv + 2;
	raise_nofile();
	int go_open[2], go_close[2], res[2], started[2];
	if (pipe2(go_open, O_CLOEXEC) < 0 || pipe2(go_close, O_CLOEXEC) < 0 ||
		pipe2(res, O_CLOEXEC) < 0 || pipe2(started, O_CLOEXEC) < 0)
		die("pipe2");
	pid_t *pids = calloc(n, sizeof(*pids));
	for (size_t i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			close(go_open[1]);
			close(go_close[1]);
			close(res[0]);
			close(started[0]);
			struct login l;
			int r = login_start(&l, service, users[i]);
			char c = 's';
			if (write(started[1], &c, 1) != 1)
				_exit(1);
			close(started[1]);
			if (read(go_open[0], &c, 1) < 0) /* EOF: released */
				_exit(1);
			if (r == PAM_SUCCESS)
				r = login_open(&l);
			struct burst_rec rec = {(int32_t)i, r == PAM_SUCCESS, now_ns()};
			if (write(res[1], &rec, sizeof(rec)) != sizeof(rec))
				_exit(1);
			if (read(go_close[0], &c, 1) < 0)
				_exit(1);
			r = login_close(&l);
			rec.ok = r == PAM_SUCCESS;
			rec.end_ns = now_ns();
			login_end(&l, r);
			if (write(res[1], &rec, sizeof(rec)) != sizeof(rec))
				_exit(1);
			_exit(0);
		}
		pids[i] = pid;
	}
	close(go_open[0]);
	close(go_close[0]);
	close(res[1]);
	close(started[1]);
	/* Every child has done pam_start and waits at the barrier. */
	for (size_t k = 0; k < n; k++) {
		char c;
		if (read(started[0], &c, 1) != 1)
			die("read burst start");
	}
	close(started[0]);
	int64_t *open_ns = samples(n), *close_ns = samples(n);
	for (size_t i = 0; i < n; i++)
		open_ns[i] = close_ns[i] = -1;
	long fail_open = 0, fail_close = 0;
	int64_t t0 = now_ns();
	close(go_open[1]);
	size_t got = burst_collect(res[0], open_ns, n, t0, t0 + timeout, &fail_open);
	fail_open += (long)(n - got);
	int64_t open_wall = burst_wall(open_ns, n);
	int64_t t1 = now_ns();
	close(go_close[1]);
	/* Only the logins that opened send a second record. */
	size_t opened = got;
	got = burst_collect(res[0], close_ns, opened, t1, t1 + timeout, &fail_close);
	fail_close += (long)(opened - got);
	int64_t close_wall = burst_wall(close_ns, n);
	for (size_t i = 0; i < n; i++)
		kill(pids[i], SIGKILL); /* gone already, but for a login that hung */
	for (size_t i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
	printf("{\"mode\":\"burst\",\"logins\":%zu,\"open_failures\":%ld,\"close_failures\":%ld,"
	       "\"open_wall_ns\":%" PRId64 ",\"close_wall_ns\":%" PRId64 ",\n",
		n, fail_open, fail_close, open_wall, close_wall);
	json_array("open_ns", open_ns, n, false);
	json_array("close_ns", close_ns, n, true);
	printf("}\n");
	return 0;
}

/* ---- keeper: a manager's PAM session, per service ---------------------- */

static int cmd_keeper(int argc, char **argv)
{
	if (argc < 3)
		usage();
	const char *user = argv[0];
	long rounds = atol(argv[1]);
	bool preload = !strcmp(argv[2], "--preload");
	size_t ns = (size_t)(argc - 2 - preload);
	char **services = argv + 2 + preload;
	if (rounds <= 0 || ns == 0)
		usage();
	for (size_t s = 0; preload && s < ns; s++) {
		pam_handle_t *h = NULL; /* kept: its modules stay loaded */
		if (pam_start(services[s], user, &conv, &h) != PAM_SUCCESS) {
			fprintf(stderr, "pamloop: pam_start %s failed\n", services[s]);
			return 1;
		}
	}
	int64_t **open_ns = calloc(ns, sizeof(*open_ns)), **close_ns = calloc(ns, sizeof(*close_ns));
	if (!open_ns || !close_ns)
		die("calloc");
	for (size_t s = 0; s < ns; s++) {
		open_ns[s] = samples((size_t)rounds);
		close_ns[s] = samples((size_t)rounds);
	}
	for (long r = 0; r < rounds; r++) {
		for (size_t k = 0; k < ns; k++) {
			size_t s = (k + (size_t)r) % ns;
			int fds[2];
			if (pipe2(fds, O_CLOEXEC) < 0)
				die("pipe2");
			pid_t pid = fork();
			if (pid < 0)
				die("fork");
			if (pid == 0) {
				int64_t t[2] = {-1, -1};
				pam_handle_t *h = NULL;
				int64_t t0 = now_ns();
				int rc = pam_start(services[s], user, &conv, &h);
				if (rc == PAM_SUCCESS)
					rc = pam_acct_mgmt(h, PAM_SILENT);
				int cred = rc == PAM_SUCCESS &&
					pam_setcred(h, PAM_ESTABLISH_CRED | PAM_SILENT) == PAM_SUCCESS;
				if (rc == PAM_SUCCESS)
					rc = pam_open_session(h, PAM_SILENT);
				int64_t t1 = now_ns();
				if (rc == PAM_SUCCESS) {
					t[0] = t1 - t0;
					rc = pam_close_session(h, PAM_SILENT);
				}
				if (cred)
					pam_setcred(h, PAM_DELETE_CRED | PAM_SILENT);
				if (h)
					pam_end(h, rc);
				if (rc == PAM_SUCCESS)
					t[1] = now_ns() - t1;
				_exit(write(fds[1], t, sizeof(t)) == (ssize_t)sizeof(t) ? 0 : 1);
			}
			close(fds[1]);
			int64_t t[2] = {-1, -1};
			ssize_t got = read(fds[0], t, sizeof(t));
			if (got != (ssize_t)sizeof(t))
				t[0] = t[1] = -1;
			close(fds[0]);
			int st;
			if (waitpid(pid, &st, 0) < 0)
				die("waitpid");
			open_ns[s][r] = t[0];
			close_ns[s][r] = t[1];
		}
	}
	printf("{\"mode\":\"keeper\",\"rounds\":%ld,\"preload\":%s,\"services\":[", rounds,
		preload ? "true" : "false");
	for (size_t s = 0; s < ns; s++)
		printf("%s\"%s\"", s ? "," : "", services[s]);
	printf("],\n\"open_ns\":[");
	for (size_t s = 0; s < ns; s++) {
		printf("%s{", s ? "," : "");
		json_array("v", open_ns[s], (size_t)rounds, true);
		printf("}");
	}
	printf("],\n\"close_ns\":[");
	for (size_t s = 0; s < ns; s++) {
		printf("%s{", s ? "," : "");
		json_array("v", close_ns[s], (size_t)rounds, true);
		printf("}");
	}
	printf("]}\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	const char *mode = argv[1];
	argc -= 2;
	argv += 2;
	int rc;
	if (!strcmp(mode, "warm"))
		rc = cmd_warm(argc, argv);
	else if (!strcmp(mode, "cold"))
		rc = cmd_cold(argc, argv);
	else if (!strcmp(mode, "spawn"))
		rc = cmd_spawn(argc, argv);
	else if (!strcmp(mode, "scale"))
		rc = cmd_scale(argc, argv);
	else if (!strcmp(mode, "floor"))
		rc = cmd_floor(argc, argv);
	else if (!strcmp(mode, "burst"))
		rc = cmd_burst(argc, argv);
	else if (!strcmp(mode, "keeper"))
		rc = cmd_keeper(argc, argv);
	else
		usage();
	fflush(stdout);
	return rc;
}
