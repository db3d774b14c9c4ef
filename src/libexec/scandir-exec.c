/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scandir-exec: run a scan-directory supervisor as the user's manager.
 *
 *   scandir-exec [--runit] DIR PROG [ARG...]
 *
 * Runs as the user. If DIR does not exist there is nothing to supervise:
 * rather than let the supervisor fail (s6-svscan exits) or warn every second
 * (runsvdir), stay as an idle manager until asked to stop (SIGTERM, SIGHUP or
 * SIGINT: exit 0). A directory created later is picked up at the manager's
 * next start.
 *
 * Otherwise, without --runit: exec PROG (s6-svscan stops every service
 * cleanly on SIGTERM by itself).
 *
 * With --runit: runsvdir has no clean stop of its own (SIGTERM leaves every
 * runsv running; SIGHUP makes each runsv exit only once its service goes
 * down, which nothing asks for), so stay as runsvdir's parent and, on
 * SIGTERM, SIGHUP or SIGINT:
 *   1. SIGKILL runsvdir, so that it respawns no runsv (its SIGTERM means
 *      the same, exit at once, but runsvdir 2.1.2 can take 5 s to act on it);
 *   2. write "dx" to every service's supervise/control: runsv sends the
 *      service SIGTERM (and SIGCONT), does not restart it, and exits once it
 *      is down;
 *   3. exit 0 when no descendant is left: as a child subreaper, the runsv
 *      processes orphaned in step 1 are ours to wait for.
 * What ignores SIGTERM is left to the daemon's stop_timeout. If runsvdir
 * exits on its own, exit with its status (the daemon restarts the manager).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper-version.h"
#include "environment-d.h"

#define PROG "dinit-userservd scandir-exec"

static void usage(void)
{
	fprintf(stderr, "usage: scandir-exec [--runit] DIR PROG [ARG...]\n");
	_exit(100);
}

static void block_signals(sigset_t *set, bool chld)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGINT);
	if (chld)
		sigaddset(set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, set, NULL) < 0) {
		fprintf(stderr, PROG ": sigprocmask: %s\n", strerror(errno));
		_exit(111);
	}
}

static int idle(const char *dir)
{
	fprintf(stderr, PROG ": %s does not exist: no services to supervise until the "
			"manager is started again\n", dir);
	sigset_t set;
	block_signals(&set, false);
	for (;;) {
		if (sigwaitinfo(&set, NULL) > 0)
			return 0;
		if (errno != EINTR) {
			fprintf(stderr, PROG ": sigwaitinfo: %s\n", strerror(errno));
			return 111;
		}
	}
}

/* Asks the runsv of every service in dir to stop its service and exit. */
static void runit_stop_services(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, PROG ": stop: %s: %s\n", dir, strerror(errno));
		return;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[4096];
		if (snprintf(path, sizeof(path), "%s/supervise/control", de->d_name) >=
			(int)sizeof(path))
			continue;
		/* no reader (ENXIO): no runsv there; not a FIFO: not runsv's */
		int fd = openat(dfd, path, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && write(fd, "dx", 2) != 2)
			fprintf(stderr, PROG ": stop: %s/%s: %s\n", dir, path, strerror(errno));
		close(fd);
	}
	closedir(d);
}

/* Whether a runsv is still among our children (after runsvdir is gone, the
 * runsv processes are reparented to us, the subreaper). */
static bool runsv_left(void)
{
	DIR *d = opendir("/proc");
	if (!d)
		return false;
	pid_t self = getpid();
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char path[64], buf[256];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* "pid (comm) state ppid ..." */
		char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
		if (!open_paren || !close_paren || close_paren[1] != ' ')
			continue;
		int ppid = 0;
		char state;
		if (sscanf(close_paren + 2, "%c %d", &state, &ppid) != 2 || ppid != self ||
			state == 'Z')
			continue;
		*close_paren = '\0';
		found = !strcmp(open_paren + 1, "runsv");
	}
	closedir(d);
	return found;
}

static int run_runit(const char *dir, char **prog)
{
	sigset_t set;
	block_signals(&set, true);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		fprintf(stderr, PROG ": prctl(PR_SET_CHILD_SUBREAPER): %s\n", strerror(errno));
		return 111;
	}
	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
		return 111;
	}
	if (child == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(prog[0], prog);
		fprintf(stderr, PROG ": cannot run %s: %s\n", prog[0], strerror(errno));
		_exit(127);
	}

	bool stopping = false;
	for (;;) {
		siginfo_t si;
		if (sigwaitinfo(&set, &si) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, PROG ": sigwaitinfo: %s\n", strerror(errno));
			return 111;
		}
		if (si.si_signo != SIGCHLD) {
			if (!stopping) {
				stopping = true;
				if (child > 0)
					kill(child, SIGKILL);
				runit_stop_services(dir);
			}
		}
		/* reap everything that ended; exit when nothing is left */
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid < 0 && errno == ECHILD)
				return 0;
			if (pid <= 0) {
				/* Stopped once every runsv has brought its service
				 * down and exited; whatever a service double-forked
				 * and left to us is the daemon's to kill. */
				if (stopping && !child && !runsv_left())
					return 0;
				break;
			}
			if (pid == child) {
				child = 0;
				if (!stopping) {
					fprintf(stderr, PROG ": %s exited unexpectedly\n", prog[0]);
					return WIFEXITED(status) ? (WEXITSTATUS(status) ? WEXITSTATUS(status) : 111)
								 : 128 + WTERMSIG(status);
				}
			}
		}
	}
}

/*
 * The run-time environment directory, $XDG_RUNTIME_DIR/dinit-userservd/env
 * (docs/backends.md): made empty at every start of the manager, whose own
 * environment already holds whatever setenv stored; the daemon's
 * userenv-apply writes it while the manager runs. Services read it with
 * `chpst -e DIR` / `s6-envdir DIR`. Failures only cost that directory.
 */
static void envdir_reset(void)
{
	const char *rundir = getenv("XDG_RUNTIME_DIR");
	char path[4096];
	if (!rundir || rundir[0] != '/')
		return;
	snprintf(path, sizeof(path), "%s/dinit-userservd", rundir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, PROG ": mkdir %s: %s\n", path, strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/dinit-userservd/env", rundir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, PROG ": mkdir %s: %s\n", path, strerror(errno));
		return;
	}
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		fprintf(stderr, PROG ": open %s: %s\n", path, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
			unlinkat(dfd, e->d_name, 0) < 0)
			fprintf(stderr, PROG ": unlink %s/%s: %s\n", path, e->d_name,
				strerror(errno));
	closedir(d);
}

int main(int argc, char **argv)
{
	helper_version(argc, argv, PROG);
	int i = 1;
	envdir_reset();
	environment_d_apply(PROG); /* the environment the supervisor starts with */
	bool runit = false;
	if (i < argc && !strcmp(argv[i], "--runit")) {
		runit = true;
		i++;
	}
	if (argc - i < 2)
		usage();
	const char *dir = argv[i];
	char **prog = argv + i + 1;

	struct stat st;
	if (stat(dir, &st) < 0 && (errno == ENOENT || errno == ENOTDIR))
		return idle(dir);
	if (runit)
		return run_runit(dir, prog);
	execvp(prog[0], prog);
	fprintf(stderr, PROG ": cannot run %s: %s\n", prog[0], strerror(errno));
	return 127;
}
