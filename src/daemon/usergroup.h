/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Everything a user's manager started, as one unit that can be killed.
 * With a writable cgroup2 hierarchy: one cgroup per user below the daemon's
 * own (…/dinit-userservd/user-UID); the manager joins it before exec, and
 * cgroup.kill ends everything in it, double-forked daemons included.
 * Otherwise: the daemon is a child subreaper, so every process the manager
 * started stays in the daemon's process tree; the tree is walked in /proc
 * and each process of the daemon's subtree with the user's real uid is
 * killed, through a pidfd opened and checked again before the signal (a pid
 * reused since the scan is never signalled). That walk happens where a
 * manager exits or is killed, never on the login path. Either way no other user's processes and none of the user's login
 * sessions (not in the daemon's tree) are touched.
 */
#ifndef DUS_USERGROUP_H
#define DUS_USERGROUP_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

/* Detect cgroup2 (unless cfg->use_cgroups is false). Returns whether it is
 * used. cfg: the daemon's config (valid and current across reloads). */
bool usergroup_init(const struct config *cfg);
/* Process tree: the daemon's own processes (keepers, helpers) run as root
 * below it, beside what root's manager left; spared(pid) tells them apart,
 * so that a kill of uid 0 never ends another user's keeper. */
void usergroup_set_spared(bool (*spared)(pid_t pid));
/* SIGKILL everything the user's manager started. root: a manager the daemon
 * adopted (not below it in the process tree), or 0. Returns how many
 * processes were seen (0: nothing was left). */
int usergroup_kill(uid_t uid, pid_t root);
/* Before a manager starts: kill what an earlier one left. cgroup: whatever
 * is in the group (a previous daemon's, say); process tree: only when the
 * last kill may have left something (see usergroup_kill), else nothing,
 * since each manager's exit kills its leftovers. Returns the count. */
int usergroup_clear(uid_t uid);
/* Remove the user's cgroup, if any: now if it is empty, else once it is
 * (its processes were killed and are exiting; cgroup.events is watched). */
void usergroup_remove(uid_t uid);
/* The user's cgroup directory (created if needed; O_DIRECTORY|O_CLOEXEC), for
 * clone3(CLONE_INTO_CGROUP) or an openat of its cgroup.procs; -1 when cgroups
 * are not used or the group cannot be made. *fresh: whether it was created
 * now (so it was never killed through cgroup.kill). */
int usergroup_dir_fd(uid_t uid, bool *fresh);
/* At start, once the users a previous daemon left are taken over: remove
 * the empty groups a previous daemon left, but not those of users in_use (a
 * keeper of theirs may be about to create its manager in an empty group). */
void usergroup_sweep(bool (*in_use)(uid_t uid));
/* Whether a group still waits to be empty (the daemon's exit waits for it). */
bool usergroup_draining(void);
/* At the daemon's exit: remove every empty user group and the daemon's own
 * directory; a group still populated stays (logged), and so does that
 * directory, for the next start. */
void usergroup_finish(void);

#endif
