/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * environment.d(5) files: "NAME=VALUE" lines; empty lines and lines whose
 * first non-blank character is '#' are ignored. NAME is letters, digits and
 * '_', not starting with a digit (blanks around it are dropped). VALUE loses
 * its leading and trailing blanks; a VALUE wholly inside double quotes loses
 * them (inside, \" \\ \$ stand for the character), one inside single quotes
 * is taken literally. Otherwise (and inside double quotes) $NAME, ${NAME},
 * ${NAME:-DEFAULT} (DEFAULT when NAME is unset or empty) and
 * ${NAME:+ALTERNATE} (ALTERNATE when NAME is set and not empty) expand to
 * the variables defined so far, and \$ is a literal '$'. A line that does
 * not follow this is reported (file, line, why) and skipped, never fatal.
 */
#ifndef DUS_ENVFILE_H
#define DUS_ENVFILE_H

#include <stddef.h>

#define ENVFILE_VALUE_MAX 4096 /* a longer expanded value is a bad line */
#define ENVFILE_VARS_MAX 1024  /* a further new variable is a bad line */

/* A set of "NAME=VALUE" strings, in the order they were first set. */
struct envfile_env {
	char **vars;
	size_t n, cap;
};

typedef void (*envfile_bad_fn)(const char *file, unsigned line, const char *why, void *data);

/* Add (or replace) NAME (name_len bytes) = value. 0, or -1 when out of room. */
int envfile_set(struct envfile_env *env, const char *name, size_t name_len, const char *value);
/* The value of NAME (name_len bytes), or NULL when unset. */
const char *envfile_get(const struct envfile_env *env, const char *name, size_t name_len);
void envfile_free(struct envfile_env *env);

/*
 * Parse len bytes of text (one file, called file in reports) into env: each
 * good line sets its variable, each bad one calls bad. Returns the number
 * of bad lines.
 */
unsigned envfile_parse(struct envfile_env *env, const char *text, size_t len, const char *file,
	envfile_bad_fn bad, void *data);

#endif
