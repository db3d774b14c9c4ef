/*
 * scandir-exec: start a scan-directory supervisor, if there is anything to scan.
 *
 *   scandir-exec DIR PROG [ARG...]
 *
 * Runs as the user, as the user's manager. If DIR exists (or cannot be
 * checked for another reason), execs PROG: runsvdir or s6-svscan, which
 * report their own errors. If DIR does not exist, there is nothing to
 * supervise: rather than let the supervisor fail (s6-svscan exits) or warn
 * every second (runsvdir), stay as an idle manager until asked to stop
 * (SIGTERM, SIGHUP or SIGINT: exit 0). A directory created later is picked
 * up at the manager's next start.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG "dinit-userservd scandir-exec"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: scandir-exec DIR PROG [ARG...]\n");
		return 100;
	}
	const char *dir = argv[1];
	struct stat st;
	if (stat(dir, &st) == 0 || (errno != ENOENT && errno != ENOTDIR)) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, PROG ": cannot run %s: %s\n", argv[2], strerror(errno));
		return 127;
	}

	fprintf(stderr, PROG ": %s does not exist: no services to supervise until the "
			"manager is started again\n", dir);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		fprintf(stderr, PROG ": sigprocmask: %s\n", strerror(errno));
		return 111;
	}
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		if (sig > 0)
			return 0;
		if (errno != EINTR) {
			fprintf(stderr, PROG ": sigwaitinfo: %s\n", strerror(errno));
			return 111;
		}
	}
}
