/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for src/daemon/proc.c: pid + start time identify a process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

static void test_self(void **state)
{
	(void)state;
	uint64_t start = proc_start_time(getpid());
	assert_true(start > 0);
	assert_true(proc_is(getpid(), start));
	assert_false(proc_is(getpid(), start + 1));
	assert_false(proc_is(getpid(), 0));
	assert_false(proc_is(0, start));
	assert_false(proc_is(-1, start));
	/* The parent started no later than this process. */
	uint64_t parent = proc_start_time(getppid());
	assert_true(parent > 0 && parent <= start);
}

/* A command name with spaces and parens: fields are counted after the last ')'. */
static void test_odd_name(void **state)
{
	(void)state;
	uint64_t before = proc_start_time(getpid());
	assert_int_equal(prctl(PR_SET_NAME, "a) b ) c", 0, 0, 0), 0);
	assert_int_equal(proc_start_time(getpid()), before);
	assert_int_equal(prctl(PR_SET_NAME, "test_proc", 0, 0, 0), 0);
}

static void test_gone(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	uint64_t start = proc_start_time(pid); /* running or a zombie: still there */
	assert_true(start > 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(proc_start_time(pid), 0);
	assert_false(proc_is(pid, start));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_odd_name),
		cmocka_unit_test(test_gone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
