/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests for src/daemon/state.c: a session's record, written in place,
 * is read back whole, and a record cut short at any byte (the daemon killed
 * while writing it) is never taken for a session: it is ignored and removed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "state.h"

static struct config cfg;
static char dir[64];

static int setup(void **state)
{
	(void)state;
	/* In the build directory: the test sandbox hides /tmp. */
	snprintf(dir, sizeof(dir), "state-test-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char cwd[512];
	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s/%s", cwd, dir);
	return state_init(&cfg, -1);
}

static int teardown(void **state)
{
	(void)state;
	char cmd[CONFIG_PATH_SIZE + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cfg.state_dir);
	close(state_lock_fd());
	return system(cmd) == 0 ? 0 : -1;
}

static struct state_session sample(uint64_t id)
{
	struct state_session s = {.id = id, .uid = 1000, .pid = 4242, .pid_start = 987654,
		.flags = 0, .since = 1700000000, .export_rundir = true, .vtnr = 2,
		.has_manager = 1};
	strcpy(s.service, "login");
	strcpy(s.tty, "tty2");
	strcpy(s.rhost, "");
	strcpy(s.session_class, "user");
	strcpy(s.session_type, "tty");
	strcpy(s.seat, "seat0");
	return s;
}

struct seen {
	int n;
	struct state_session last;
};

static void collect(const struct state_session *s, void *data)
{
	struct seen *seen = data;
	seen->n++;
	seen->last = *s;
}

static void record_path(char *out, size_t len, uint64_t id)
{
	snprintf(out, len, "%s/sessions/%" PRIu64, cfg.state_dir, id);
}

static size_t read_record(uint64_t id, char *buf, size_t len)
{
	char path[CONFIG_PATH_SIZE + 64];
	record_path(path, sizeof(path), id);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, len);
	close(fd);
	assert_true(n > 0 && (size_t)n < len);
	return (size_t)n;
}

static void write_record(uint64_t id, const char *text, size_t len)
{
	char path[CONFIG_PATH_SIZE + 64];
	record_path(path, sizeof(path), id);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static bool record_exists(uint64_t id)
{
	char path[CONFIG_PATH_SIZE + 64];
	record_path(path, sizeof(path), id);
	return access(path, F_OK) == 0;
}

/* Written in place (no temporary file left), read back field for field. */
static void test_roundtrip(void **state)
{
	(void)state;
	struct state_session s = sample(281474976710657ULL);
	assert_int_equal(state_save_session(&s), 0);
	char path[CONFIG_PATH_SIZE + 64];
	record_path(path, sizeof(path), s.id);
	strcat(path, ".new");
	assert_int_not_equal(access(path, F_OK), 0);
	struct seen seen = {0};
	state_foreach_session(collect, &seen);
	assert_int_equal(seen.n, 1);
	struct state_session *r = &seen.last;
	assert_true(r->id == s.id);
	assert_int_equal(r->uid, s.uid);
	assert_int_equal(r->pid, s.pid);
	assert_true(r->pid_start == s.pid_start);
	assert_string_equal(r->service, "login");
	assert_string_equal(r->tty, "tty2");
	assert_int_equal(r->since, s.since);
	assert_true(r->export_rundir);
	assert_string_equal(r->session_class, "user");
	assert_string_equal(r->session_type, "tty");
	assert_string_equal(r->seat, "seat0");
	assert_int_equal(r->vtnr, 2);
	assert_int_equal(r->has_manager, 1);
	state_drop_session(s.id);
	assert_false(record_exists(s.id));
}

/* Every proper prefix of a record is refused (and removed); the whole one is taken. */
static void test_cut_short(void **state)
{
	(void)state;
	struct state_session s = sample(281474976710999ULL);
	assert_int_equal(state_save_session(&s), 0);
	char whole[2048];
	size_t len = read_record(s.id, whole, sizeof(whole));
	for (size_t cut = 0; cut < len; cut++) {
		/* A cut after the id's last digit leaves every field whole. */
		if (cut == len - 1 && whole[cut] == '\n')
			continue;
		write_record(s.id, whole, cut);
		struct seen seen = {0};
		state_foreach_session(collect, &seen);
		if (seen.n)
			fail_msg("a record cut at byte %zu of %zu was taken", cut, len);
		assert_false(record_exists(s.id));
	}
	write_record(s.id, whole, len);
	struct seen seen = {0};
	state_foreach_session(collect, &seen);
	assert_int_equal(seen.n, 1);
	assert_true(seen.last.pid_start == s.pid_start);
	state_drop_session(s.id);
}

/* A record of an older daemon (id first, written through a rename) is still read. */
static void test_older_record(void **state)
{
	(void)state;
	const char *old = "id=77\nuid=1000\npid=4242\npid_start=987654\nservice=su\ntty=\n"
			  "rhost=\nflags=0\nsince=1700000000\nexport_rundir=1\n";
	write_record(77, old, strlen(old));
	struct seen seen = {0};
	state_foreach_session(collect, &seen);
	assert_int_equal(seen.n, 1);
	assert_true(seen.last.id == 77);
	assert_string_equal(seen.last.service, "su");
	assert_int_equal(seen.last.has_manager, -1);
	state_drop_session(77);
}

/* A stale record under the same id (cannot happen) is replaced whole. */
static void test_stale_replaced(void **state)
{
	(void)state;
	write_record(99, "uid=5\nid=99\n", 12);
	struct state_session s = sample(99);
	assert_int_equal(state_save_session(&s), 0);
	struct seen seen = {0};
	state_foreach_session(collect, &seen);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.last.uid, 1000);
	state_drop_session(99);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_cut_short),
		cmocka_unit_test(test_older_record),
		cmocka_unit_test(test_stale_replaced),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
