/* SPDX-License-Identifier: BSD-2-Clause */
/* mkdir -p, root's way: every directory made is 0755 unless it exists. */
#ifndef DUS_MKDIRS_H
#define DUS_MKDIRS_H

/* Make dir and every missing parent. 0, or -1 with errno set. */
int mkdirs(const char *dir);
/* Make every missing parent of path (not path itself). 0, or -1 with errno. */
int mkdirs_parents(const char *path);

#endif
