/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * XDG_RUNTIME_DIR management. The directory is created 0700 owned by the
 * user under a root-owned 0755 parent; removal works below an O_NOFOLLOW
 * directory fd with unlinkat, never follows a symlink and never descends
 * into another filesystem (a mount point inside is left alone).
 */
#ifndef DUS_RUNDIR_H
#define DUS_RUNDIR_H

#include <stddef.h>
#include <sys/types.h>

/* Expand %u %g %n %% in tmpl. 0, or -1 if it does not fit or is invalid. */
int rundir_expand(const char *tmpl, uid_t uid, gid_t gid, const char *name,
	char *out, size_t outlen);
/* Create path for the user, or accept an existing directory that already is
 * exactly that (owned by uid, mode 0700, not a symlink). With size_mib > 0 a
 * fresh directory gets a tmpfs of that size of its own. -1 with err set. */
int rundir_create(const char *path, uid_t uid, gid_t gid, unsigned size_mib,
	char *err, size_t errlen);
/* Remove path and everything in it on its own mount; a tmpfs mounted on path
 * itself (rundir_size) is unmounted instead. 0 or -1. */
int rundir_remove(const char *path);

#endif
