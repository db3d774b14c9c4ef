/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The manager environment users change at run time (setenv, unsetenv,
 * import-environment): kept per uid, in the state dir (so a daemon restart
 * keeps it), given to every start of the user's manager, applied to the
 * running manager at once by a helper that runs as the user
 * (libexec/userenv-apply), and forgotten when the manager stops.
 */
#ifndef DUS_USERENV_H
#define DUS_USERENV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "account.h"
#include "config.h"
#include "proto.h"

#define USERENV_MAX 64 /* variables per user */

struct userenv_job;

/* cfg: the daemon's config (valid and current across reloads). */
void userenv_init(const struct config *cfg);

/* Called once when the change reached the manager (ok) or could not. */
typedef void (*userenv_done_fn)(void *data, bool ok, const char *message);

/*
 * Apply a SET or UNSET request (validated by proto.c) to u's stored
 * environment, then to its manager when running (starting or ready), through
 * the helper of its backend ("": the configured one). Returns 0 and *job
 * (NULL: done already, nothing to apply to) or a positive errno with a
 * message in err. done is called later unless the job is cancelled first.
 */
int userenv_change(const struct account *u, const char *backend, bool running,
	const struct proto_env *req, userenv_done_fn done, void *data, struct userenv_job **job,
	char *err, size_t errlen);
/* The caller went away: done will not be called. */
void userenv_cancel(struct userenv_job *job);

/* Each stored "NAME=VALUE" of uid, in the order they were first set. */
void userenv_foreach(uid_t uid, void (*fn)(const char *var, void *data), void *data);
/* The manager stopped for good: drop uid's variables (and their record). */
void userenv_forget(uid_t uid);
/* Read uid's record from the state dir (daemon start). */
void userenv_restore(uid_t uid);
void userenv_finish(void);

#endif
