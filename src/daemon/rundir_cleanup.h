/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Runtime-dir removal off the event loop. A user may leave any number of
 * entries in their runtime dir; removing them (rundir_remove: no symlink
 * followed, no other mount entered) happens in a forked helper process that
 * holds none of the daemon's fds, so the daemon goes on serving logins. The
 * helper's end is seen through a pidfd.
 *
 * Invariant: while a removal of a path runs, nothing creates that path again
 * (rundir_cleanup_busy says so to the caller, which waits for done()).
 */
#ifndef DUS_RUNDIR_CLEANUP_H
#define DUS_RUNDIR_CLEANUP_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

/* Called once the removal of path (started for uid) has ended. */
typedef void (*rundir_cleanup_done_fn)(uid_t uid, const char *path);

void rundir_cleanup_init(const struct config *cfg, rundir_cleanup_done_fn done);
/* Remove path in a helper. 0 when started (done() follows); -1 when no
 * helper could be started: then it was removed here, synchronously. */
int rundir_cleanup_start(const char *path, uid_t uid);
/* At start: removals a previous daemon (this process before a reexec, or
 * one that crashed) left running, from state_dir: waited for the same way. */
void rundir_cleanup_restore(void);
/* Whether a removal of exactly this path runs. */
bool rundir_cleanup_busy(const char *path);
/* Whether pid is one of the removal helpers. */
bool rundir_cleanup_owns(pid_t pid);
/* Whether any removal runs (the daemon's exit waits for them). */
bool rundir_cleanup_pending(void);
/* At the daemon's exit: forget removals still running (their helpers finish
 * them on their own). */
void rundir_cleanup_finish(void);

#endif
