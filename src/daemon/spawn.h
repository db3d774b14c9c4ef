/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Spawning a user's processes for the supervisor: a manager (below the keeper
 * of its PAM session when the managers' PAM service exists) or its readiness
 * waiter, as the user, in the user's cgroup, with nothing of the daemon's.
 * The supervisor decides when; this module only creates the process. It is
 * the seam the supervisor's unit tests replace with a fake.
 */
#ifndef DUS_SPAWN_H
#define DUS_SPAWN_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "account.h"
#include "backend.h"
#include "config.h"
#include "proto.h"
#include "userenv.h"

/* The managers' output, in the user's runtime dir. */
#define MANAGER_LOG "dinit-userservd.log"

/* Sent to a keeper: SIGKILL the manager, then close the session. */
#define KEEPER_KILL_SIGNAL (SIGRTMIN + 1)

#define ENV_MAX (16 + CONFIG_ENV_MAX + BACKEND_ENV_MAX + USERENV_MAX)

struct spawn_env {
	char *vars[ENV_MAX + 1];
	char store[ENV_MAX][PROTO_PATH_SIZE + 64];
	unsigned n;
	const char *path; /* the PATH value */
};

/* Set name=value (later settings replace earlier ones). */
void spawn_env_set(struct spawn_env *e, const char *name, const char *value);
/* Set a NAME=VALUE assignment; one without '=' is ignored. */
void spawn_env_put(struct spawn_env *e, const char *assignment);

/* Join a new anonymous session keyring: whatever the daemon was started in
 * is not its children's (a warning when that fails); load the managers' PAM
 * stack (spawn_pam_preload) and the group database's NSS modules
 * (spawn_nss_preload). */
void spawn_init(void);
/* Load every NSS module of the group database in the daemon (one lookup of
 * root's groups), so that the children it forks, which all look their user's
 * groups up, find them loaded. At start (spawn_init) and at a reload. */
void spawn_nss_preload(void);
/* Remember the resource limits the daemon starts with (call before changing
 * any): managers start with them. */
void spawn_save_limits(void);
/* Set them again (a manager's child; the daemon before a reexec). 0 or -1. */
int spawn_restore_limits(void);
/* Find out, and log once at start, how children get into their cgroup:
 * created in it by clone3(CLONE_INTO_CGROUP), or moved after a fork (a
 * kernel older than 5.7). Call when cgroups are used. */
void spawn_probe(void);
/*
 * Whether managers get a PAM session of their own (its service file exists).
 * Called just before a manager's start: one stat of the file and one of its
 * directory; when either changed since the stack was loaded, it is loaded
 * again (the keepers inherit it: the daemon never runs it).
 */
bool spawn_pam_available(void);
/* Drop the loaded stack and load it afresh if the file exists (reload: an
 * included file edited in place changes neither stat). spawn_init does it. */
void spawn_pam_preload(void);
/* Drop the loaded stack (pam_end); the next start loads it again. */
void spawn_pam_drop(void);

/* Run the program path with argv as root, an empty environment, the
 * daemon's stdin/out/err and nothing else of the daemon's, at a cost that
 * does not grow with the daemon's memory or fds (no copy of either: the
 * daemon waits until the child has exec'd). Its pid, or -1 (errno). */
pid_t spawn_helper(const char *path, char *const argv[]);

/*
 * Start argv as the user: in the user's cgroup (cgroup_dir, or -1), and with
 * use_pam below a keeper that holds the managers' PAM session; log_cap: the
 * size the manager's log is kept under (0: not capped; a waiter's is 0).
 * Returns the pid to supervise (the keeper's, or the manager's), or -1 with
 * err set.
 */
pid_t spawn_as_user(const struct account *u, char *const argv[], const struct spawn_env *env,
	int cgroup_dir, bool fresh, bool use_pam, unsigned log_cap, char *err, size_t errlen);

#endif
