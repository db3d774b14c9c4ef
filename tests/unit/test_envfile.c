/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests of the environment.d(5) parser (src/common/envfile.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "envfile.h"

struct bad_log {
	unsigned n;
	unsigned lines[16];
	char why[16][128];
	char file[64];
};

static void bad_cb(const char *file, unsigned line, const char *why, void *data)
{
	struct bad_log *log = data;
	snprintf(log->file, sizeof(log->file), "%s", file);
	if (log->n < 16) {
		log->lines[log->n] = line;
		snprintf(log->why[log->n], sizeof(log->why[0]), "%s", why);
	}
	log->n++;
}

static unsigned parse(struct envfile_env *env, const char *text, struct bad_log *log)
{
	memset(log, 0, sizeof(*log));
	return envfile_parse(env, text, strlen(text), "t.conf", bad_cb, log);
}

static const char *get(const struct envfile_env *env, const char *name)
{
	return envfile_get(env, name, strlen(name));
}

static void test_basic_lines(void **state)
{
	struct envfile_env env = { 0 };
	struct bad_log log;
	assert_int_equal(parse(&env,
		"# comment\n"
		"\n"
		"   \t\n"
		"  # indented comment\n"
		"A=1\n"
		"  B = two words  \n"
		"C=\n"
		"A=3\r\n"
		"_x9=y", &log), 0);
	assert_string_equal(get(&env, "A"), "3");
	assert_string_equal(get(&env, "B"), "two words");
	assert_string_equal(get(&env, "C"), "");
	assert_string_equal(get(&env, "_x9"), "y");
	assert_null(get(&env, "D"));
	assert_int_equal(env.n, 4);
	/* First-set order is kept when a variable is replaced. */
	assert_string_equal(env.vars[0], "A=3");
	envfile_free(&env);
}

static void test_expansion(void **state)
{
	struct envfile_env env = { 0 };
	struct bad_log log;
	envfile_set(&env, "HOME", 4, "/home/u");
	envfile_set(&env, "EMPTY", 5, "");
	assert_int_equal(parse(&env,
		"P=$HOME/bin\n"
		"Q=${HOME}x\n"
		"R=${UNSET:-def}/${EMPTY:-d2}/${HOME:-no}\n"
		"S=${HOME:+alt}|${EMPTY:+no}|${UNSET:+no}\n"
		"T=\\$HOME $ a$\n"
		"U=$UNSET.$HOMEX\n"
		"V=${UNSET:-${HOME:+nested}}\n"
		"P=$P:/opt/bin\n", &log), 0);
	assert_string_equal(get(&env, "P"), "/home/u/bin:/opt/bin");
	assert_string_equal(get(&env, "Q"), "/home/ux");
	assert_string_equal(get(&env, "R"), "def/d2//home/u");
	assert_string_equal(get(&env, "S"), "alt||");
	assert_string_equal(get(&env, "T"), "$HOME $ a$");
	assert_string_equal(get(&env, "U"), ".");
	assert_string_equal(get(&env, "V"), "nested");
	envfile_free(&env);
}

static void test_quotes(void **state)
{
	struct envfile_env env = { 0 };
	struct bad_log log;
	envfile_set(&env, "X", 1, "ex");
	assert_int_equal(parse(&env,
		"A=\"  spaced $X \\\" \\\\ \\$X \"\n"
		"B='literal $X \\n'\n"
		"C=\"\"\n", &log), 0);
	assert_string_equal(get(&env, "A"), "  spaced ex \" \\ $X ");
	assert_string_equal(get(&env, "B"), "literal $X \\n");
	assert_string_equal(get(&env, "C"), "");
	envfile_free(&env);
}

static void test_bad_lines_reported_and_skipped(void **state)
{
	struct envfile_env env = { 0 };
	struct bad_log log;
	assert_int_equal(parse(&env,
		"GOOD=1\n"
		"no equals sign\n"
		"1BAD=x\n"
		"=x\n"
		"A-B=x\n"
		"C=${UNCLOSED\n"
		"D=${}\n"
		"E=\"unterminated\n"
		"F='a'b'\n"
		"G=\"in\"side\"\n"
		"LAST=2\n", &log), 9);
	assert_int_equal(log.n, 9);
	assert_string_equal(log.file, "t.conf");
	unsigned expected[] = { 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	for (unsigned i = 0; i < 9; i++)
		assert_int_equal(log.lines[i], expected[i]);
	assert_non_null(strstr(log.why[0], "NAME=VALUE"));
	assert_non_null(strstr(log.why[4], "'}'"));
	/* Bad lines change nothing; the good ones around them count. */
	assert_int_equal(env.n, 2);
	assert_string_equal(get(&env, "GOOD"), "1");
	assert_string_equal(get(&env, "LAST"), "2");
	envfile_free(&env);
}

static void test_limits(void **state)
{
	struct envfile_env env = { 0 };
	struct bad_log log;
	static char text[3 * ENVFILE_VALUE_MAX];
	/* A value at the limit is good; one byte more is a bad line. */
	memset(text, 'v', sizeof(text));
	memcpy(text, "A=", 2);
	text[2 + ENVFILE_VALUE_MAX] = '\0';
	assert_int_equal(parse(&env, text, &log), 0);
	assert_int_equal(strlen(get(&env, "A")), ENVFILE_VALUE_MAX);
	/* Doubling by expansion past the limit. */
	assert_int_equal(parse(&env, "B=$A$A\n", &log), 1);
	assert_null(get(&env, "B"));
	/* A NUL byte or a control character in the value. */
	memset(&log, 0, sizeof(log));
	assert_int_equal(envfile_parse(&env, "C=a\0b\n", 6, "t.conf", bad_cb, &log), 1);
	assert_int_equal(parse(&env, "D=a\tb\n", &log), 1);
	assert_null(get(&env, "C"));
	/* No callback: still counted. */
	assert_int_equal(envfile_parse(&env, "x\ny\n", 4, "t", NULL, NULL), 2);
	envfile_free(&env);
	assert_int_equal(env.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_lines),
		cmocka_unit_test(test_expansion),
		cmocka_unit_test(test_quotes),
		cmocka_unit_test(test_bad_lines_reported_and_skipped),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
