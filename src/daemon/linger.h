/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Linger marks: one empty file per user, named after the user, in linger_dir.
 * A user with a mark keeps a manager without sessions (with linger = maybe);
 * linger = yes makes every manager outlive its sessions, linger = no none.
 */
#ifndef DUS_LINGER_H
#define DUS_LINGER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* cfg: the daemon's config (valid and current across reloads). */
void linger_init(const struct config *cfg);
bool linger_marked(const char *name);
/* Create or remove the mark. 0, or -1 with err set. */
int linger_set(const char *name, bool on, char *err, size_t errlen);
/* Call fn for each marked user name. */
void linger_foreach(void (*fn)(const char *name, void *data), void *data);

#endif
