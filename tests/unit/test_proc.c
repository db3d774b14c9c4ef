/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for src/daemon/proc.c: pid + start time identify a process. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"
#include "util.h"

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

/* read_text, what these readers use: one read, cut to the buffer, NUL-ended;
 * an empty or missing file is -1; O_NOFOLLOW refuses a symlink. */
static void test_read_text(void **state)
{
	(void)state;
	char dir[] = "/var/tmp/dus-read-text.XXXXXX", path[64], link[64], buf[8];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	snprintf(link, sizeof(link), "%s/l", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(read_text(AT_FDCWD, path, 0, buf, sizeof(buf)), -1); /* empty */
	assert_int_equal(write(fd, "0123456789", 10), 10);
	close(fd);
	assert_int_equal(read_text(AT_FDCWD, path, 0, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "0123456");
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(read_text(AT_FDCWD, link, 0, buf, sizeof(buf)), 7);
	assert_int_equal(read_text(AT_FDCWD, link, O_NOFOLLOW, buf, sizeof(buf)), -1);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(read_text(dfd, "f", 0, buf, 4), 3);
	assert_string_equal(buf, "012");
	close(dfd);
	unlink(link);
	unlink(path);
	assert_int_equal(read_text(AT_FDCWD, path, 0, buf, sizeof(buf)), -1); /* gone */
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_odd_name),
		cmocka_unit_test(test_gone),
		cmocka_unit_test(test_read_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
