/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * environment.d for the user's manager: read by the helper that starts it,
 * which runs as the user, so the user's own files are only ever opened by
 * the user.
 */
#ifndef DUS_ENVIRONMENT_D_H
#define DUS_ENVIRONMENT_D_H

/*
 * Read every *.conf of /usr/lib/environment.d, /etc/environment.d and
 * ~/.config/environment.d ($XDG_CONFIG_HOME/environment.d when set) in
 * environment.d(5) order (by file name across the directories; a file masks
 * a same-named one of a directory before it in that list, /dev/null
 * included), starting from this process's environment, and set the result
 * in it. A bad line is logged to stderr as "prog: FILE:LINE: why" and
 * skipped. $DINIT_USERSERVD_ENVIRONMENT_D, when set, replaces the two
 * system directories by its colon-separated list (tests).
 */
void environment_d_apply(const char *prog);

#endif
