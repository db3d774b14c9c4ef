/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Backends: how to run one kind of per-user service manager.
 *
 * The supervisor asks backend_prepare() for a spawn plan before each start of
 * a user's manager. The plan says what to exec as the user, how readiness is
 * reported and how the manager is asked to stop. Everything the plan needs on
 * disk (generated service files, directories in the daemon's state dir) is
 * created by backend_prepare() itself, as root, before the fork.
 *
 * Readiness (enum backend_ready):
 *   NONE    ready as soon as the manager has been spawned (backend "none"
 *           spawns nothing at all: argv[0] == NULL).
 *   FIFO    ready when a line is written to ready_fifo (a FIFO the daemon
 *           creates, owned by the user, mode 0600). The dinit backend's
 *           generated boot service writes it once every boot.d service is up;
 *           a custom backend writes it itself ($DINIT_USERSERVD_READY).
 *   WAITER  ready when waiter_argv, run as the user after the manager has been
 *           spawned, exits 0 (runit, s6: waits until every service is up).
 */
#ifndef DUS_BACKEND_H
#define DUS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

#define BACKEND_ARGV_MAX 48
#define BACKEND_ENV_MAX 8
#define BACKEND_STR_SIZE 8192 /* storage for every string of a plan */

enum backend_ready { BACKEND_READY_NONE, BACKEND_READY_FIFO, BACKEND_READY_WAITER };

/* What the backend knows of the user; every string non-NULL ("" if unset). */
struct backend_user {
	uid_t uid;
	gid_t gid;
	const char *name;
	const char *home;
	const char *rundir;    /* XDG_RUNTIME_DIR of the manager, "" when none */
	const char *user_dir;  /* <state_dir>/users/<uid>: root-owned 0755, ours */
	const char *ready_fifo; /* <user_dir>/ready: created by the supervisor */
};

struct backend_plan {
	char *argv[BACKEND_ARGV_MAX];   /* manager; argv[0] == NULL: nothing to run */
	char *env[BACKEND_ENV_MAX];     /* extra "NAME=value" for the manager */
	enum backend_ready ready;
	char *waiter_argv[BACKEND_ARGV_MAX]; /* with BACKEND_READY_WAITER */
	int stop_signal;                /* sent for a graceful stop */
	/* all strings above point into this storage */
	char strings[BACKEND_STR_SIZE];
	size_t used;
};

/* Where the helpers run as the user are (DUS_LIBEXECDIR or its override). */
const char *backend_libexec_dir(void);

/*
 * Fill *plan for starting user's manager with cfg->backend. Returns 0, or -1
 * with a message in err (the user's login then gets that message).
 */
int backend_prepare(const struct config *cfg, const struct backend_user *user,
	struct backend_plan *plan, char *err, size_t errlen);

#endif
