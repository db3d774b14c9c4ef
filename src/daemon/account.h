/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Who a user's processes run as (the manager, its readiness waiter, the
 * userenv helper): views of the user's fields, read at each use. The user
 * module keeps them up to date; they live as long as the user.
 */
#ifndef DUS_ACCOUNT_H
#define DUS_ACCOUNT_H

#include <stdbool.h>
#include <sys/types.h>

struct account {
	uid_t uid;
	const gid_t *gid;
	const char *name;
	const char *home;
	const char *shell;
	const char *rundir;         /* its XDG_RUNTIME_DIR, "" if none */
	const bool *rundir_managed; /* the rundir is the daemon's own */
};

#endif
