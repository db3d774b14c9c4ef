/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rundir-remove: remove a runtime directory the daemon made.
 *
 *     rundir-remove PATH
 *
 * Run by the daemon, as root, after a user's manager has stopped: what
 * rundir_remove (src/daemon/rundir.c) does, in a process of its own, so that
 * a directory of a million entries never holds the daemon up. It is a
 * program, not a forked copy of the daemon, so that starting it costs the
 * same at 20,000 sessions as at one (spawn_helper). Exit status 0 when PATH
 * is gone, 1 when not; its messages go to its standard error, the daemon's.
 */
#include <stdio.h>

#include "helper-version.h"
#include "log.h"
#include "rundir.h"

#define PROG "dinit-userservd rundir-remove"

int main(int argc, char **argv)
{
	helper_version(argc, argv, PROG);
	if (argc != 2 || argv[1][0] != '/') {
		fprintf(stderr, "usage: rundir-remove PATH\n");
		return 2;
	}
	log_init("dinit-userservd", false, false);
	return rundir_remove(argv[1]) == 0 ? 0 : 1;
}
