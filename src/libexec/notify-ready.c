/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * notify-ready: tell the daemon that the user's manager is ready.
 *
 * Run as the command of the generated dinit service "dinit-userservd-ready",
 * i.e. once every autostart service has started. Writes one line to the FIFO
 * named by $DINIT_USERSERVD_READY, without blocking.
 *
 * Exit status: 0 when the line was written, or when nobody is waiting for it
 * (no reader, FIFO gone, variable unset: a later restart of the service, or a
 * dinit not started by the daemon). 1 only when the FIFO is there but cannot
 * be used, which the daemon would otherwise see as a login timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper-version.h"

#define PROG "dinit-userservd notify-ready"

int main(int argc, char **argv)
{
	helper_version(argc, argv, PROG);
	const char *path = getenv("DINIT_USERSERVD_READY");
	if (!path || !path[0]) {
		fprintf(stderr, PROG ": DINIT_USERSERVD_READY is not set: nobody to notify\n");
		return 0;
	}
	/* A reader that went away between open and write must not kill us. */
	signal(SIGPIPE, SIG_IGN);

	int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENXIO || errno == ENOENT)
			return 0; /* nobody is waiting any more */
		fprintf(stderr, PROG ": open %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		fprintf(stderr, PROG ": %s is not a FIFO\n", path);
		close(fd);
		return 1;
	}
	static const char line[] = "ready\n";
	ssize_t n;
	do
		n = write(fd, line, sizeof(line) - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EPIPE && errno != EAGAIN) {
		fprintf(stderr, PROG ": write %s: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	return 0;
}
