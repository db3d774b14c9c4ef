/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests for src/common/config.c. Each test writes real files into a
 * private temporary directory and asserts exact values and exact error
 * messages, including the file:line they name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "proto.h"

static char tmpdir[256];
static char conf_path[512];
static char err[512];

static int group_setup(void **state)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/dus-config-test.XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/test.conf", tmpdir);
	return 0;
}

static int group_teardown(void **state)
{
	unlink(conf_path);
	rmdir(tmpdir);
	return 0;
}

static void write_bytes(const char *data, size_t len)
{
	FILE *f = fopen(conf_path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_conf(const char *text)
{
	write_bytes(text, strlen(text));
}

/* Loads text onto defaults; returns config_load's result. */
static int load_text(struct config *cfg, const char *text)
{
	config_defaults(cfg);
	write_conf(text);
	err[0] = '\0';
	return config_load(cfg, conf_path, err, sizeof(err));
}

/* Asserts that text fails with exactly "PATH:LINE: message" and changes nothing. */
static void assert_error(const char *text, unsigned line, const char *message)
{
	struct config cfg, before;
	config_defaults(&before);
	assert_int_equal(load_text(&cfg, text), -1);
	char expected[1024];
	snprintf(expected, sizeof(expected), "%s:%u: %s", conf_path, line, message);
	assert_string_equal(err, expected);
	assert_memory_equal(&cfg, &before, sizeof(cfg));
}

static void assert_bad_value(const char *key, const char *value, const char *expected)
{
	char text[2048], message[1024];
	snprintf(text, sizeof(text), "%s = %s\n", key, value);
	snprintf(message, sizeof(message), "bad value '%s' for %s: %s", value, key, expected);
	assert_error(text, 1, message);
}

static void test_defaults(void **state)
{
	struct config cfg;
	memset(&cfg, 0xa5, sizeof(cfg));
	config_defaults(&cfg);
	assert_string_equal(cfg.socket_path, "/run/dinit-userservd/control.sock");
	/* The clients' default (proto.h): config.c keeps the literal for tests/docs. */
	assert_string_equal(cfg.socket_path, PROTO_SOCKET_DEFAULT);
	assert_string_equal(cfg.state_dir, "/run/dinit-userservd");
	assert_string_equal(cfg.linger_dir, "/var/lib/dinit-userservd/linger");
	assert_string_equal(cfg.backend, "dinit");
	assert_string_equal(cfg.rundir_path, "/run/user/%u");
	assert_int_equal(cfg.manage_rundir, CONFIG_RUNDIR_AUTO);
	assert_true(cfg.export_dbus_address);
	assert_int_equal(cfg.login_timeout, 60);
	assert_int_equal(cfg.stop_delay, 10);
	assert_int_equal(cfg.stop_timeout, 30);
	assert_false(cfg.root_session);
	assert_int_equal(cfg.linger, CONFIG_LINGER_MAYBE);
	assert_false(cfg.debug);
	assert_false(cfg.syslog);
	assert_int_equal(cfg.rundir_size, 0);
	assert_int_equal(cfg.rundir_size_percent, 0);
	assert_int_equal(cfg.manager_log_size, 1048576);
	assert_int_equal(cfg.restart_limit, 5);
	assert_int_equal(cfg.restart_window, 60);
	assert_int_equal(cfg.max_connections, 256);
	assert_int_equal(cfg.max_connections_per_uid, 16);
	assert_true(cfg.use_cgroups);
	assert_int_equal(cfg.n_dinit_service_dirs, 4);
	assert_string_equal(cfg.dinit_service_dirs[0], "~/.config/dinit.d");
	assert_string_equal(cfg.dinit_service_dirs[1], "/etc/dinit.d/user");
	assert_string_equal(cfg.dinit_service_dirs[2], "/usr/local/lib/dinit.d/user");
	assert_string_equal(cfg.dinit_service_dirs[3], "/usr/lib/dinit.d/user");
	assert_int_equal(cfg.n_manager_env, 0);

	/* Deterministic down to the padding: two calls compare equal. */
	struct config again;
	memset(&again, 0x5a, sizeof(again));
	config_defaults(&again);
	assert_memory_equal(&cfg, &again, sizeof(cfg));
}

static const char all_keys_text[] =
	"socket_path = /run/x/ctl.sock\n"
	"state_dir = /run/x\n"
	"linger_dir = /var/lib/x/linger\n"
	"backend = runit\n"
	"rundir_path = /run/user/%n-%g-%%-%u\n"
	"manage_rundir = yes\n"
	"export_dbus_address = no\n"
	"login_timeout = 0\n"
	"stop_delay = 86400\n"
	"stop_timeout = 7\n"
	"root_session = yes\n"
	"linger = yes\n"
	"debug = yes\n"
	"syslog = yes\n"
	"rundir_size = 64\n"
	"manager_log_size = 64K\n"
	"restart_limit = 1\n"
	"restart_window = 1\n"
	"max_connections = 65536\n"
	"max_connections_per_uid = 1\n"
	"use_cgroups = no\n"
	"tasks_max = 50\n"
	"memory_max = 512M\n"
	"dinit_service_dirs = ~/a /b\n"
	"manager_env = LANG=C.UTF-8\n"
	"manager_env = _X1=a=b c\n";

static void assert_all_keys(const struct config *cfg)
{
	assert_string_equal(cfg->socket_path, "/run/x/ctl.sock");
	assert_string_equal(cfg->state_dir, "/run/x");
	assert_string_equal(cfg->linger_dir, "/var/lib/x/linger");
	assert_string_equal(cfg->backend, "runit");
	assert_string_equal(cfg->rundir_path, "/run/user/%n-%g-%%-%u");
	assert_int_equal(cfg->manage_rundir, CONFIG_RUNDIR_YES);
	assert_false(cfg->export_dbus_address);
	assert_int_equal(cfg->login_timeout, 0);
	assert_int_equal(cfg->stop_delay, 86400);
	assert_int_equal(cfg->stop_timeout, 7);
	assert_true(cfg->root_session);
	assert_int_equal(cfg->linger, CONFIG_LINGER_YES);
	assert_true(cfg->debug);
	assert_true(cfg->syslog);
	assert_int_equal(cfg->rundir_size, 64);
	assert_int_equal(cfg->manager_log_size, 65536);
	assert_int_equal(cfg->restart_limit, 1);
	assert_int_equal(cfg->restart_window, 1);
	assert_int_equal(cfg->max_connections, 65536);
	assert_int_equal(cfg->max_connections_per_uid, 1);
	assert_false(cfg->use_cgroups);
	assert_int_equal(cfg->tasks_max, 50);
	assert_int_equal(cfg->memory_max, 512ull << 20);
	assert_int_equal(cfg->memory_max_percent, 0);
	assert_int_equal(cfg->n_dinit_service_dirs, 2);
	assert_string_equal(cfg->dinit_service_dirs[0], "~/a");
	assert_string_equal(cfg->dinit_service_dirs[1], "/b");
	assert_string_equal(cfg->dinit_service_dirs[2], "");
	assert_int_equal(cfg->n_manager_env, 2);
	assert_string_equal(cfg->manager_env[0], "LANG=C.UTF-8");
	assert_string_equal(cfg->manager_env[1], "_X1=a=b c");
}

static void test_every_key(void **state)
{
	struct config cfg;
	assert_int_equal(load_text(&cfg, all_keys_text), 0);
	assert_all_keys(&cfg);
}

static void test_empty_file(void **state)
{
	struct config cfg, def;
	config_defaults(&def);
	assert_int_equal(load_text(&cfg, ""), 0);
	assert_memory_equal(&cfg, &def, sizeof(cfg));
	assert_int_equal(load_text(&cfg, "\n\n# only comments\n   \n\t\n"), 0);
	assert_memory_equal(&cfg, &def, sizeof(cfg));
}

static void test_whitespace_and_comments(void **state)
{
	struct config cfg;
	assert_int_equal(load_text(&cfg,
		"# a comment\n"
		"\n"
		"   # an indented comment = with an equals sign\n"
		"\t login_timeout\t=\t15 \t\n"
		"stop_delay=3\n"
		"backend   =none\n"
		"manager_env = A=b#c\n"
		"state_dir = /with space/and#hash\n"
		"debug = yes"), /* no final newline */
		0);
	assert_int_equal(cfg.login_timeout, 15);
	assert_int_equal(cfg.stop_delay, 3);
	assert_string_equal(cfg.backend, "none");
	assert_int_equal(cfg.n_manager_env, 1);
	assert_string_equal(cfg.manager_env[0], "A=b#c");
	assert_string_equal(cfg.state_dir, "/with space/and#hash");
	assert_true(cfg.debug);

	/* A trailing comment is not stripped: it makes the value bad, loudly. */
	assert_bad_value("debug", "yes # turn it on", "expected yes or no");
}

static void test_later_line_wins(void **state)
{
	struct config cfg;
	assert_int_equal(load_text(&cfg,
		"login_timeout = 1\n"
		"login_timeout = 2\n"
		"dinit_service_dirs = /a /b /c\n"
		"dinit_service_dirs = /d\n"), 0);
	assert_int_equal(cfg.login_timeout, 2);
	assert_int_equal(cfg.n_dinit_service_dirs, 1);
	assert_string_equal(cfg.dinit_service_dirs[0], "/d");
	assert_string_equal(cfg.dinit_service_dirs[1], "");
}

static void test_booleans(void **state)
{
	const char *yes[] = { "yes", "true", "1" };
	const char *no[] = { "no", "false", "0" };
	const char *keys[] = { "export_dbus_address", "root_session", "debug", "syslog" };
	struct config cfg;
	char text[128];
	for (size_t k = 0; k < 4; k++) {
		for (size_t i = 0; i < 3; i++) {
			snprintf(text, sizeof(text), "%s = %s\n", keys[k], yes[i]);
			assert_int_equal(load_text(&cfg, text), 0);
			bool *field = k == 0 ? &cfg.export_dbus_address : k == 1 ? &cfg.root_session :
				k == 2 ? &cfg.debug : &cfg.syslog;
			assert_true(*field);
			snprintf(text, sizeof(text), "%s = %s\n", keys[k], no[i]);
			assert_int_equal(load_text(&cfg, text), 0);
			assert_false(*field);
		}
		const char *bad[] = { "YES", "on", "2", "y", "yess", "-1" };
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			assert_bad_value(keys[k], bad[i], "expected yes or no");
	}
}

static void test_enums(void **state)
{
	struct config cfg;
	assert_int_equal(load_text(&cfg, "manage_rundir = no\n"), 0);
	assert_int_equal(cfg.manage_rundir, CONFIG_RUNDIR_NO);
	assert_int_equal(load_text(&cfg, "manage_rundir = true\n"), 0);
	assert_int_equal(cfg.manage_rundir, CONFIG_RUNDIR_YES);
	assert_int_equal(load_text(&cfg, "manage_rundir = no\nmanage_rundir = auto\n"), 0);
	assert_int_equal(cfg.manage_rundir, CONFIG_RUNDIR_AUTO);
	assert_bad_value("manage_rundir", "maybe", "expected auto, yes or no");

	assert_int_equal(load_text(&cfg, "linger = no\n"), 0);
	assert_int_equal(cfg.linger, CONFIG_LINGER_NO);
	assert_int_equal(load_text(&cfg, "linger = 1\n"), 0);
	assert_int_equal(cfg.linger, CONFIG_LINGER_YES);
	assert_int_equal(load_text(&cfg, "linger = no\nlinger = maybe\n"), 0);
	assert_int_equal(cfg.linger, CONFIG_LINGER_MAYBE);
	assert_bad_value("linger", "auto", "expected yes, no or maybe");
}

static void test_numbers(void **state)
{
	struct config cfg;
	assert_int_equal(load_text(&cfg, "login_timeout = 0086400\n"), 0);
	assert_int_equal(cfg.login_timeout, 86400);
	assert_int_equal(load_text(&cfg, "rundir_size = 1048576\n"), 0);
	assert_int_equal(cfg.rundir_size, 1048576);
	assert_int_equal(load_text(&cfg, "restart_limit = 1000\n"), 0);
	assert_int_equal(cfg.restart_limit, 1000);

	const char *secs = "expected a number of seconds from 0 to 86400";
	assert_bad_value("login_timeout", "x", secs);
	assert_bad_value("login_timeout", "86401", secs);
	assert_bad_value("login_timeout", "-1", secs);
	assert_bad_value("login_timeout", "+5", secs);
	assert_bad_value("login_timeout", "0x10", secs);
	assert_bad_value("login_timeout", "1 0", secs);
	assert_bad_value("login_timeout", "5s", secs);
	assert_bad_value("login_timeout", "1.5", secs);
	assert_bad_value("login_timeout", "4294967296", secs);
	assert_bad_value("login_timeout", "99999999999999999999999999", secs);
	assert_bad_value("stop_delay", "86401", secs);
	assert_bad_value("stop_timeout", "86401", secs);
	assert_bad_value("restart_window", "0", "expected a number of seconds from 1 to 86400");
	assert_bad_value("restart_limit", "0", "expected a number from 1 to 1000");
	assert_bad_value("restart_limit", "1001", "expected a number from 1 to 1000");
	assert_bad_value("max_connections", "0", "expected a number from 1 to 65536");
	assert_bad_value("max_connections", "65537", "expected a number from 1 to 65536");
	assert_bad_value("max_connections_per_uid", "0", "expected a number from 1 to 65536");
	assert_bad_value("rundir_size", "1048577",
		"expected a number of MiB from 0 to 1048576, or N%");
	assert_bad_value("tasks_max", "4194305", "expected a number from 0 to 4194304");
	assert_bad_value("tasks_max", "-1", "expected a number from 0 to 4194304");
}

static void test_sizes(void **state)
{
	struct config cfg;
	/* rundir_size: MiB, or N% of RAM; the later line wins either way. */
	assert_int_equal(load_text(&cfg, "rundir_size = 10%\n"), 0);
	assert_int_equal(cfg.rundir_size, 0);
	assert_int_equal(cfg.rundir_size_percent, 10);
	assert_int_equal(load_text(&cfg, "rundir_size = 100%\nrundir_size = 8\n"), 0);
	assert_int_equal(cfg.rundir_size, 8);
	assert_int_equal(cfg.rundir_size_percent, 0);
	assert_int_equal(load_text(&cfg, "rundir_size = 8\nrundir_size = 1%\n"), 0);
	assert_int_equal(cfg.rundir_size, 0);
	assert_int_equal(cfg.rundir_size_percent, 1);
	const char *pct = "expected a percentage from 1% to 100%";
	assert_bad_value("rundir_size", "0%", pct);
	assert_bad_value("rundir_size", "101%", pct);
	assert_bad_value("rundir_size", "x%", pct);
	assert_bad_value("rundir_size", "10 %", pct);
	assert_bad_value("rundir_size", "%", "expected a number of MiB from 0 to 1048576, or N%");

	/* manager_log_size: bytes, K, M, G. */
	assert_int_equal(load_text(&cfg, "manager_log_size = 4096\n"), 0);
	assert_int_equal(cfg.manager_log_size, 4096);
	assert_int_equal(load_text(&cfg, "manager_log_size = 64K\n"), 0);
	assert_int_equal(cfg.manager_log_size, 65536);
	assert_int_equal(load_text(&cfg, "manager_log_size = 2m\n"), 0);
	assert_int_equal(cfg.manager_log_size, 2097152);
	assert_int_equal(load_text(&cfg, "manager_log_size = 1G\n"), 0);
	assert_int_equal(cfg.manager_log_size, 1073741824);
	assert_int_equal(load_text(&cfg, "manager_log_size = 0\n"), 0);
	assert_int_equal(cfg.manager_log_size, 0);
	const char *bytes = "expected a number of bytes from 0 to 1073741824 (K, M, G: binary multiples)";
	assert_bad_value("manager_log_size", "2G", bytes);
	assert_bad_value("manager_log_size", "1073741825", bytes);
	assert_bad_value("manager_log_size", "1KB", bytes);
	assert_bad_value("manager_log_size", "K", bytes);
	assert_bad_value("manager_log_size", "1T", bytes);
	assert_bad_value("manager_log_size", "-1", bytes);
	assert_bad_value("manager_log_size", "4294967296K", bytes);
}

static char *dump_to_string(const struct config *cfg);

/* memory_max: bytes, K/M/G/T (powers of 1024, either case), or N% of RAM; dumped back
 * in the largest exact unit. */
static void test_memory_max(void **state)
{
	struct config cfg;
	static const struct {
		const char *in;
		unsigned long long bytes;
		unsigned percent;
		const char *dump;
	} good[] = {
		{"0", 0, 0, "0"},
		{"1000", 1000, 0, "1000"},
		{"4096", 4096, 0, "4K"},
		{"2K", 2048, 0, "2K"},
		{"512M", 512ull << 20, 0, "512M"},
		{"512m", 512ull << 20, 0, "512M"}, /* either case, as manager_log_size */
		{"1536M", 1536ull << 20, 0, "1536M"},
		{"1G", 1ull << 30, 0, "1G"},
		{"3T", 3ull << 40, 0, "3T"},
		{"4194304T", 1ull << 62, 0, "4194304T"},
		{"50%", 0, 50, "50%"},
		{"1%", 0, 1, "1%"},
		{"100%", 0, 100, "100%"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char text[64];
		snprintf(text, sizeof(text), "memory_max = %s\n", good[i].in);
		assert_int_equal(load_text(&cfg, text), 0);
		assert_int_equal(cfg.memory_max, good[i].bytes);
		assert_int_equal(cfg.memory_max_percent, good[i].percent);
		char *out = dump_to_string(&cfg);
		char want[64];
		snprintf(want, sizeof(want), "memory_max = %s\n", good[i].dump);
		assert_non_null(strstr(out, want));
		free(out);
	}
	/* A later line replaces the whole value: bytes after a percentage. */
	assert_int_equal(load_text(&cfg, "memory_max = 50%\nmemory_max = 1G\n"), 0);
	assert_int_equal(cfg.memory_max, 1ull << 30);
	assert_int_equal(cfg.memory_max_percent, 0);

	const char *what = "expected 0 (no limit), a number of bytes with an optional K, M, G "
		"or T, or N% of RAM (1-100)";
	static const char *const bad[] = {
		"x", "-1", "1.5G", "5X", "M", "G5", "0%", "101%", "%", "50 %", "1e9",
		"4194305T", "99999999999999999999", "+5M", "50%%",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_bad_value("memory_max", bad[i], what);
}

static void test_paths(void **state)
{
	struct config cfg;
	const char *keys[] = { "socket_path", "state_dir", "linger_dir" };
	for (size_t k = 0; k < 3; k++) {
		assert_bad_value(keys[k], "relative/path", "expected an absolute path");
		assert_bad_value(keys[k], "~/x", "expected an absolute path");
	}

	/* Path fields take up to CONFIG_PATH_SIZE - 1 bytes. */
	char text[2 * CONFIG_PATH_SIZE], value[CONFIG_PATH_SIZE + 1];
	memset(value, 'a', sizeof(value));
	value[0] = '/';
	value[CONFIG_PATH_SIZE - 1] = '\0';
	snprintf(text, sizeof(text), "state_dir = %s\n", value);
	assert_int_equal(load_text(&cfg, text), 0);
	assert_string_equal(cfg.state_dir, value);
	value[CONFIG_PATH_SIZE - 1] = 'a';
	value[CONFIG_PATH_SIZE] = '\0';
	snprintf(text, sizeof(text), "\nstate_dir = %s\n", value);
	assert_error(text, 2, "value too long for state_dir (max 1023 bytes)");

	/* socket_path must also fit in sockaddr_un.sun_path (108 bytes). */
	memset(value, 'a', sizeof(value));
	value[0] = '/';
	value[107] = '\0';
	snprintf(text, sizeof(text), "socket_path = %s\n", value);
	assert_int_equal(load_text(&cfg, text), 0);
	assert_string_equal(cfg.socket_path, value);
	value[107] = 'a';
	value[108] = '\0';
	snprintf(text, sizeof(text), "socket_path = %s\n", value);
	assert_error(text, 1, "value too long for socket_path (max 107 bytes for a unix socket)");
}

static void test_backend(void **state)
{
	struct config cfg;
	const char *ok[] = { "dinit", "runit", "s6", "none", "/usr/libexec/my-backend" };
	char text[128];
	for (size_t i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), "backend = %s\n", ok[i]);
		assert_int_equal(load_text(&cfg, text), 0);
		assert_string_equal(cfg.backend, ok[i]);
	}
	const char *expected = "expected dinit, runit, s6, none or an absolute path";
	assert_bad_value("backend", "systemd", expected);
	assert_bad_value("backend", "Dinit", expected);
	assert_bad_value("backend", "./backend", expected);
	assert_bad_value("backend", "bin/backend", expected);
}

static void test_rundir_path(void **state)
{
	struct config cfg;
	assert_int_equal(load_text(&cfg, "rundir_path = /run/users/%n\n"), 0);
	assert_string_equal(cfg.rundir_path, "/run/users/%n");
	assert_int_equal(load_text(&cfg, "rundir_path = /tmp/%g/%u/100%%\n"), 0);
	assert_string_equal(cfg.rundir_path, "/tmp/%g/%u/100%%");

	const char *escapes = "only %u, %g, %n and %% may follow '%'";
	const char *per_user = "expected %u or %n in it (one directory per user)";
	assert_bad_value("rundir_path", "/run/user/%d", escapes);
	assert_bad_value("rundir_path", "/run/user/%u%", escapes);
	assert_bad_value("rundir_path", "/run/user/%U", escapes);
	assert_bad_value("rundir_path", "/run/user/%", escapes);
	assert_bad_value("rundir_path", "/run/user", per_user);
	assert_bad_value("rundir_path", "/run/user/%g", per_user);
	assert_bad_value("rundir_path", "/run/user/%%u", per_user);
	assert_bad_value("rundir_path", "run/user/%u", "expected an absolute path");
}

static void test_service_dirs(void **state)
{
	struct config cfg;
	assert_int_equal(load_text(&cfg, "dinit_service_dirs = \t~/ /x \t /y/z\t~/.d\n"), 0);
	assert_int_equal(cfg.n_dinit_service_dirs, 4);
	assert_string_equal(cfg.dinit_service_dirs[0], "~/");
	assert_string_equal(cfg.dinit_service_dirs[1], "/x");
	assert_string_equal(cfg.dinit_service_dirs[2], "/y/z");
	assert_string_equal(cfg.dinit_service_dirs[3], "~/.d");

	const char *bad[] = { "rel", "~", "~user/x", "./x", "~~/x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128], message[256];
		snprintf(text, sizeof(text), "dinit_service_dirs = /ok %s /ok2\n", bad[i]);
		snprintf(message, sizeof(message), "bad directory '%s' in dinit_service_dirs: "
			"expected an absolute path or one starting with ~/", bad[i]);
		assert_error(text, 1, message);
	}

	/* CONFIG_DIRS_MAX entries fit, one more does not. */
	char text[1024] = "dinit_service_dirs =";
	for (int i = 0; i < CONFIG_DIRS_MAX; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), " /d%d", i);
	assert_int_equal(load_text(&cfg, text), 0);
	assert_int_equal(cfg.n_dinit_service_dirs, CONFIG_DIRS_MAX);
	assert_string_equal(cfg.dinit_service_dirs[CONFIG_DIRS_MAX - 1], "/d15");
	strcat(text, " /one-more");
	assert_error(text, 1, "too many directories in dinit_service_dirs (max 16)");

	char dir[CONFIG_PATH_SIZE + 1], line[CONFIG_PATH_SIZE + 64];
	memset(dir, 'd', sizeof(dir));
	dir[0] = '/';
	dir[CONFIG_PATH_SIZE] = '\0';
	snprintf(line, sizeof(line), "dinit_service_dirs = %s\n", dir);
	assert_error(line, 1, "directory too long in dinit_service_dirs (max 1023 bytes)");
}

static void test_manager_env(void **state)
{
	struct config cfg;
	assert_int_equal(load_text(&cfg,
		"manager_env = A=1\n"
		"manager_env = B=\n"
		"manager_env = A=2\n"
		"manager_env = a_b9=x y\n"), 0);
	assert_int_equal(cfg.n_manager_env, 3);
	assert_string_equal(cfg.manager_env[0], "A=2");
	assert_string_equal(cfg.manager_env[1], "B=");
	assert_string_equal(cfg.manager_env[2], "a_b9=x y");

	/* A name that is a prefix of another is a different name. */
	assert_int_equal(load_text(&cfg, "manager_env = AB=1\nmanager_env = A=2\n"), 0);
	assert_int_equal(cfg.n_manager_env, 2);
	assert_string_equal(cfg.manager_env[0], "AB=1");
	assert_string_equal(cfg.manager_env[1], "A=2");

	/* The file's manager_env lines replace an earlier list as a whole. */
	assert_int_equal(load_text(&cfg, "manager_env = OLD=1\nmanager_env = OLD2=1\n"), 0);
	write_conf("manager_env = NEW=1\n");
	assert_int_equal(config_load(&cfg, conf_path, err, sizeof(err)), 0);
	assert_int_equal(cfg.n_manager_env, 1);
	assert_string_equal(cfg.manager_env[0], "NEW=1");
	assert_string_equal(cfg.manager_env[1], "");
	/* ...and a file without any keeps it. */
	write_conf("debug = yes\n");
	assert_int_equal(config_load(&cfg, conf_path, err, sizeof(err)), 0);
	assert_int_equal(cfg.n_manager_env, 1);

	const char *expected = "expected NAME=VALUE with NAME of letters, digits and '_', "
		"not starting with a digit";
	const char *bad[] = { "NOEQUALS", "=x", "1A=x", "A-B=x", "A B=x", "A.B=x", "\xc3\xa9=x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_bad_value("manager_env", bad[i], expected);

	/* CONFIG_ENV_MAX lines fit, one more does not. */
	char text[4096] = "";
	for (int i = 0; i < CONFIG_ENV_MAX; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "manager_env = V%d=%d\n", i, i);
	assert_int_equal(load_text(&cfg, text), 0);
	assert_int_equal(cfg.n_manager_env, CONFIG_ENV_MAX);
	assert_string_equal(cfg.manager_env[CONFIG_ENV_MAX - 1], "V31=31");
	strcat(text, "manager_env = V32=32\n");
	assert_error(text, CONFIG_ENV_MAX + 1, "too many manager_env lines (max 32)");

	char value[CONFIG_PATH_SIZE + 1], line[CONFIG_PATH_SIZE + 64];
	memset(value, 'v', sizeof(value));
	memcpy(value, "X=", 2);
	value[CONFIG_PATH_SIZE - 1] = '\0';
	snprintf(line, sizeof(line), "manager_env = %s\n", value);
	assert_int_equal(load_text(&cfg, line), 0);
	assert_string_equal(cfg.manager_env[0], value);
	value[CONFIG_PATH_SIZE - 1] = 'v';
	value[CONFIG_PATH_SIZE] = '\0';
	snprintf(line, sizeof(line), "manager_env = %s\n", value);
	assert_error(line, 1, "value too long for manager_env (max 1023 bytes)");
}

static void test_syntax_errors(void **state)
{
	assert_error("# c\n\nfoo = 1\n", 3, "unknown key 'foo'");
	assert_error("debug = yes\nDebug = yes\n", 2, "unknown key 'Debug'");
	assert_error("login timeout = 5\n", 1, "unknown key 'login timeout'");
	assert_error("foo =\n", 1, "unknown key 'foo'");
	assert_error("debug\n", 1, "expected 'key = value'");
	assert_error("\n\n\n  debug yes  \n", 4, "expected 'key = value'");
	assert_error("= yes\n", 1, "missing key before '='");
	assert_error("debug =\n", 1, "empty value for debug");
	assert_error("debug =   \t \n", 1, "empty value for debug");
	assert_error("manager_env =\n", 1, "empty value for manager_env");
	assert_error("dinit_service_dirs = \t\n", 1, "empty value for dinit_service_dirs");
	assert_error("debug = yes\r\n", 1, "control character 0x0d in line");
	assert_error("debug = yes\nstate_dir = /a\x1b[0m\n", 2, "control character 0x1b in line");
	assert_error("# comment\x7f\n", 1, "control character 0x7f in line");
	assert_error("debug = yes\n\x0c\n", 2, "control character 0x0c in line");

	/* An embedded NUL is not a silent end of line. */
	struct config cfg, before;
	config_defaults(&before);
	cfg = before;
	write_bytes("debug = yes\0garbage\n", 20);
	assert_int_equal(config_load(&cfg, conf_path, err, sizeof(err)), -1);
	char expected[1024];
	snprintf(expected, sizeof(expected), "%s:1: control character 0x00 in line", conf_path);
	assert_string_equal(err, expected);
	assert_memory_equal(&cfg, &before, sizeof(cfg));

	/* A very long bad value is cut in the message. */
	char text[256], message[256];
	char longv[101];
	memset(longv, '9', 100);
	longv[100] = '\0';
	snprintf(text, sizeof(text), "login_timeout = %s\n", longv);
	snprintf(message, sizeof(message), "bad value '%.64s...' for login_timeout: "
		"expected a number of seconds from 0 to 86400", longv);
	assert_error(text, 1, message);
}

static void test_long_lines(void **state)
{
	/* 4096 bytes is the longest line; one more is an error, not a split. */
	static char text[3 * 4096];
	memset(text, 0, sizeof(text));
	strcpy(text, "debug = yes\n#");
	size_t n = strlen(text);
	memset(text + n, 'c', 4095);
	strcat(text, "\nroot_session = yes\n");
	struct config cfg;
	assert_int_equal(load_text(&cfg, text), 0);
	assert_true(cfg.debug);
	assert_true(cfg.root_session);

	memset(text, 0, sizeof(text));
	strcpy(text, "debug = yes\n#");
	memset(text + strlen(text), 'c', 4096);
	strcat(text, "\ndebug = yes\n");
	assert_error(text, 2, "line too long (max 4096 bytes)");

	/* The overflowing part must not be read as a line of its own. */
	memset(text, 0, sizeof(text));
	text[0] = '#';
	memset(text + 1, ' ', 4096);
	strcat(text, "debug = yes\n");
	assert_error(text, 1, "line too long (max 4096 bytes)");

	/* Also without a final newline. */
	memset(text, 0, sizeof(text));
	text[0] = '#';
	memset(text + 1, 'c', 4096);
	assert_error(text, 1, "line too long (max 4096 bytes)");
}

static void test_unchanged_on_error(void **state)
{
	/* Valid lines before the error are not applied. */
	struct config cfg, before;
	assert_int_equal(load_text(&cfg, all_keys_text), 0);
	before = cfg;
	write_conf("debug = no\nlogin_timeout = 5\nmanager_env = Z=1\n"
		"dinit_service_dirs = /q\nbogus = 1\n");
	assert_int_equal(config_load(&cfg, conf_path, err, sizeof(err)), -1);
	char expected[1024];
	snprintf(expected, sizeof(expected), "%s:5: unknown key 'bogus'", conf_path);
	assert_string_equal(err, expected);
	assert_memory_equal(&cfg, &before, sizeof(cfg));
	assert_all_keys(&cfg);
}

static void test_missing_file(void **state)
{
	struct config cfg, before;
	config_defaults(&cfg);
	before = cfg;
	char path[600];
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
	char expected[700];
	snprintf(expected, sizeof(expected), "%s: No such file or directory", path);
	assert_string_equal(err, expected);
	assert_memory_equal(&cfg, &before, sizeof(cfg));

	/* A directory is an error too, not an empty config. */
	assert_int_equal(config_load(&cfg, tmpdir, err, sizeof(err)), -1);
	snprintf(expected, sizeof(expected), "%s: Is a directory", tmpdir);
	assert_string_equal(err, expected);
	assert_memory_equal(&cfg, &before, sizeof(cfg));
}

static void test_error_buffer(void **state)
{
	/* No buffer, or a tiny one, is fine. */
	struct config cfg;
	config_defaults(&cfg);
	write_conf("foo = 1\n");
	assert_int_equal(config_load(&cfg, conf_path, NULL, 0), -1);
	char small[8];
	memset(small, 'x', sizeof(small));
	assert_int_equal(config_load(&cfg, conf_path, small, sizeof(small)), -1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, conf_path, sizeof(small) - 1);
}

static char *dump_to_string(const struct config *cfg)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	assert_non_null(f);
	config_dump(cfg, f);
	assert_int_equal(fclose(f), 0);
	return out;
}

static void test_dump_defaults(void **state)
{
	struct config cfg;
	config_defaults(&cfg);
	char *out = dump_to_string(&cfg);
	assert_string_equal(out,
		"socket_path = /run/dinit-userservd/control.sock\n"
		"state_dir = /run/dinit-userservd\n"
		"linger_dir = /var/lib/dinit-userservd/linger\n"
		"backend = dinit\n"
		"rundir_path = /run/user/%u\n"
		"manage_rundir = auto\n"
		"export_dbus_address = yes\n"
		"login_timeout = 60\n"
		"stop_delay = 10\n"
		"stop_timeout = 30\n"
		"root_session = no\n"
		"linger = maybe\n"
		"debug = no\n"
		"syslog = no\n"
		"rundir_size = 0\n"
		"manager_log_size = 1048576\n"
		"restart_limit = 5\n"
		"restart_window = 60\n"
		"max_connections = 256\n"
		"max_connections_per_uid = 16\n"
		"use_cgroups = yes\n"
		"tasks_max = 0\n"
		"memory_max = 0\n"
		"dinit_service_dirs = ~/.config/dinit.d /etc/dinit.d/user "
			"/usr/local/lib/dinit.d/user /usr/lib/dinit.d/user\n"
		"# manager_env: none\n"
		"manager_classes = user\n"
		"user_linger = no\n"
		"system_boot_dirs = /etc/dinit.d/user/boot.d /usr/local/lib/dinit.d/user/boot.d "
			"/usr/lib/dinit.d/user/boot.d\n");
	free(out);
}

static void test_manager_classes(void **state)
{
	struct config cfg;
	config_defaults(&cfg);
	assert_true(config_class_has_manager(&cfg, "user"));
	assert_false(config_class_has_manager(&cfg, "greeter"));
	assert_false(config_class_has_manager(&cfg, "use"));
	assert_false(config_class_has_manager(&cfg, ""));
	assert_int_equal(load_text(&cfg, "manager_classes = user \t greeter\n"), 0);
	assert_string_equal(cfg.manager_classes, "user greeter");
	assert_true(config_class_has_manager(&cfg, "greeter"));
	assert_false(config_class_has_manager(&cfg, "greet"));
	assert_int_equal(load_text(&cfg, "manager_classes = user gr/eeter\n"), -1);
	assert_non_null(strstr(err, "manager_classes"));
	assert_string_equal(cfg.manager_classes, "user"); /* unchanged */

	assert_int_equal(load_text(&cfg, "system_boot_dirs =  /a/b\t/c \n"), 0);
	assert_string_equal(cfg.system_boot_dirs, "/a/b /c");
	assert_int_equal(load_text(&cfg, "system_boot_dirs = none\n"), 0);
	assert_string_equal(cfg.system_boot_dirs, "");
	assert_int_equal(load_text(&cfg, "system_boot_dirs = /a relative\n"), -1);
	assert_non_null(strstr(err, "system_boot_dirs"));
}

static void test_dump_roundtrip(void **state)
{
	/* dump, then load onto defaults: the same config, byte for byte. */
	struct config cfg, back;
	assert_int_equal(load_text(&cfg, all_keys_text), 0);
	char *out = dump_to_string(&cfg);
	config_defaults(&back);
	write_conf(out);
	free(out);
	assert_int_equal(config_load(&back, conf_path, err, sizeof(err)), 0);
	assert_memory_equal(&cfg, &back, sizeof(cfg));

	config_defaults(&cfg);
	out = dump_to_string(&cfg);
	memset(&back, 0, sizeof(back));
	config_defaults(&back);
	back.debug = true;
	write_conf(out);
	free(out);
	assert_int_equal(config_load(&back, conf_path, err, sizeof(err)), 0);
	assert_memory_equal(&cfg, &back, sizeof(cfg));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_whitespace_and_comments),
		cmocka_unit_test(test_later_line_wins),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_enums),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_memory_max),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_backend),
		cmocka_unit_test(test_rundir_path),
		cmocka_unit_test(test_service_dirs),
		cmocka_unit_test(test_manager_env),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_unchanged_on_error),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_error_buffer),
		cmocka_unit_test(test_dump_defaults),
		cmocka_unit_test(test_manager_classes),
		cmocka_unit_test(test_dump_roundtrip),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
