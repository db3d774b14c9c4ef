/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer target for the environment.d parser (src/common/envfile.c).
 *
 * Properties checked:
 *  - every stored variable is NAME=VALUE with a valid NAME, a value of at
 *    most ENVFILE_VALUE_MAX bytes and no control character;
 *  - no NAME is stored twice;
 *  - the number of bad lines reported equals the count returned, and a bad
 *    line's number is within the input;
 *  - parsing is deterministic: the same input twice gives the same result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct count {
	unsigned n, lines;
};

static void bad(const char *file, unsigned line, const char *why, void *p)
{
	struct count *c = p;
	if (!why || !why[0] || line == 0 || line > c->lines)
		abort();
	c->n++;
}

static void check(const struct envfile_env *env)
{
	for (size_t i = 0; i < env->n; i++) {
		const char *v = env->vars[i];
		const char *eq = strchr(v, '=');
		if (!eq || eq == v || (v[0] >= '0' && v[0] <= '9'))
			abort();
		for (const char *p = v; p < eq; p++)
			if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
					(*p >= '0' && *p <= '9')))
				abort();
		if (strlen(eq + 1) > ENVFILE_VALUE_MAX)
			abort();
		for (const unsigned char *p = (const unsigned char *)eq + 1; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				abort();
		for (size_t j = 0; j < i; j++)
			if (!strncmp(env->vars[j], v, (size_t)(eq - v) + 1))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct count c = { 0, 1 };
	for (size_t i = 0; i < size; i++)
		c.lines += data[i] == '\n';
	struct envfile_env a = { 0 }, b = { 0 };
	envfile_set(&a, "HOME", 4, "/home/fuzz");
	envfile_set(&b, "HOME", 4, "/home/fuzz");
	unsigned nbad = envfile_parse(&a, (const char *)data, size, "fuzz.conf", bad, &c);
	if (nbad != c.n)
		abort();
	check(&a);
	envfile_parse(&b, (const char *)data, size, "fuzz.conf", NULL, NULL);
	if (a.n != b.n)
		abort();
	for (size_t i = 0; i < a.n; i++)
		if (strcmp(a.vars[i], b.vars[i]))
			abort();
	envfile_free(&a);
	envfile_free(&b);
	return 0;
}
