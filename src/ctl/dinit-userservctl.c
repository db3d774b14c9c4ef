/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dinit-userservctl: query and control dinit-userservd over its control socket.
 *
 * Every command is one connection: one request, then the replies the message
 * table in proto.h promises for it, checked in order. Output is only written
 * once the whole answer has arrived and made sense, so a failure halfway
 * through never leaves half a table or half a JSON document on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "ctl.h"
#include "json.h"
#include "proto.h"
#include "table.h"
#include "util.h"

#ifndef DUS_VERSION
#define DUS_VERSION "unknown"
#endif

#define PROG "dinit-userservctl"

/* More entries than any host has: a daemon sending more is broken, not busy. */
#define MAX_ITEMS 100000

struct ctl {
	const char *socket_path;
	bool json;
	time_t now; /* one clock reading, so every age in the output agrees */
};

struct command;
typedef int (*command_fn)(const struct ctl *ctl, const struct command *cmd, const char *user);

struct command {
	const char *name;
	bool takes_user;
	command_fn run;
	uint32_t op; /* for CONTROL commands */
	const char *summary;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help' for more information.\n", stderr);
	return CTL_EXIT_USAGE;
}

/* ---- output buffering ------------------------------------------------ */

/*
 * JSON goes to a memory buffer first and reaches stdout only when the whole
 * answer was good: stdout then holds exactly one document or nothing.
 */
struct outbuf {
	FILE *f;
	char *data;
	size_t len;
};

static int outbuf_open(struct outbuf *ob)
{
	ob->data = NULL;
	ob->len = 0;
	ob->f = open_memstream(&ob->data, &ob->len);
	if (!ob->f) {
		ctl_err("open_memstream: %s", strerror(errno));
		return CTL_EXIT_FAILED;
	}
	return 0;
}

/* Write the buffer to stdout (when commit) and free it. */
static int outbuf_close(struct outbuf *ob, bool commit)
{
	int rc = 0;

	if (fclose(ob->f) != 0) {
		ctl_err("buffering output: %s", strerror(errno));
		rc = CTL_EXIT_FAILED;
	} else if (commit) {
		fwrite(ob->data, 1, ob->len, stdout);
	}
	free(ob->data);
	ob->data = NULL;
	return rc;
}

/* ---- formatting helpers ------------------------------------------------ */

/* Local time of a unix timestamp, "-" for 0 (never). */
static void format_time(char *buf, size_t size, uint64_t when)
{
	struct tm tm;
	time_t t = (time_t)when;

	if (when == 0) {
		snprintf(buf, size, "-");
		return;
	}
	if ((uint64_t)t != when || !localtime_r(&t, &tm) ||
		strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, size, "@%" PRIu64, when);
}

/* How long ago a unix timestamp was, compactly: "42s", "5m 03s", "2h 10m", "3d 4h". */
static void format_age(char *buf, size_t size, uint64_t since, time_t now)
{
	uint64_t age;

	if (since == 0) {
		snprintf(buf, size, "-");
		return;
	}
	/* A timestamp in the future (clock stepped back) reads as just now. */
	age = now > 0 && (uint64_t)now > since ? (uint64_t)now - since : 0;
	if (age < 60)
		snprintf(buf, size, "%" PRIu64 "s", age);
	else if (age < 3600)
		snprintf(buf, size, "%" PRIu64 "m %02" PRIu64 "s", age / 60, age % 60);
	else if (age < 86400)
		snprintf(buf, size, "%" PRIu64 "h %02" PRIu64 "m", age / 3600, age % 3600 / 60);
	else
		snprintf(buf, size, "%" PRIu64 "d %" PRIu64 "h", age / 86400, age % 86400 / 3600);
}

static void format_pid(char *buf, size_t size, int32_t pid)
{
	if (pid <= 0)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%" PRId32, pid);
}

/* ---- replies ----------------------------------------------------------- */

/* Report a RESULT that carries an error; returns the exit status. */
static int report_daemon_error(const struct proto_result *res)
{
	if (res->message[0] != '\0')
		ctl_err("%s", res->message);
	else if (res->code == EPERM)
		ctl_err("permission denied: changing state needs root");
	else
		ctl_err("dinit-userservd: %s", strerror(res->code));
	return CTL_EXIT_FAILED;
}

/*
 * The reply to `request` was not one of those expected at this point: an
 * error RESULT is the daemon refusing, anything else is a protocol violation.
 */
static int reply_unexpected(const struct proto_msg *reply, uint16_t request)
{
	if (reply->type == PROTO_RESULT && reply->u.result.code > 0)
		return report_daemon_error(&reply->u.result);
	ctl_err("unexpected %s reply from dinit-userservd to a %s request",
		proto_type_name(reply->type), proto_type_name(request));
	return CTL_EXIT_FAILED;
}

/* Open the connection and send req. */
static int request_send(const struct ctl *ctl, struct ctl_conn *conn, const struct proto_msg *req)
{
	int rc = ctl_conn_open(conn, ctl->socket_path, CTL_TIMEOUT_MS);

	if (rc != 0)
		return rc;
	rc = ctl_conn_send(conn, req);
	if (rc != 0)
		ctl_conn_close(conn);
	return rc;
}

/* ---- users ------------------------------------------------------------- */

static const struct table_column user_columns[] = {
	{ "UID", true },      { "USER", false },  { "STATE", false },   { "PID", true },
	{ "SESSIONS", true }, { "LINGER", false }, { "BACKEND", false }, { "SINCE", false },
};

static int user_add_row(struct table *t, const struct proto_user_info *u)
{
	char uid[16], pid[16], sessions[16], since[64];
	const char *cells[8];

	snprintf(uid, sizeof(uid), "%" PRIu32, u->uid);
	format_pid(pid, sizeof(pid), u->manager_pid);
	snprintf(sessions, sizeof(sessions), "%" PRIu32, u->sessions);
	format_time(since, sizeof(since), u->since);
	cells[0] = uid;
	cells[1] = u->name;
	cells[2] = u->state;
	cells[3] = pid;
	cells[4] = sessions;
	cells[5] = u->linger ? "yes" : "no";
	cells[6] = u->backend;
	cells[7] = since;
	if (table_add_row(t, cells) < 0) {
		ctl_err("collecting the user list: %s", strerror(errno));
		return CTL_EXIT_FAILED;
	}
	return 0;
}

/* The user object's members, without the closing brace (status appends to it). */
static void user_json_members(struct json *j, const struct proto_user_info *u)
{
	json_key(j, "uid");
	json_uint(j, u->uid);
	json_key(j, "gid");
	json_uint(j, u->gid);
	json_key(j, "name");
	json_string(j, u->name);
	json_key(j, "state");
	json_string(j, u->state);
	json_key(j, "manager_pid");
	if (u->manager_pid > 0)
		json_int(j, u->manager_pid);
	else
		json_null(j);
	json_key(j, "backend");
	json_string(j, u->backend);
	json_key(j, "since");
	json_uint(j, u->since);
	json_key(j, "restarts");
	json_uint(j, u->restarts);
	json_key(j, "last_failure");
	json_string_or_null(j, u->last_failure);
	json_key(j, "rundir");
	json_string_or_null(j, u->rundir);
	json_key(j, "linger");
	json_bool(j, u->linger != 0);
}

/* ---- sessions ---------------------------------------------------------- */

static const struct table_column session_columns[] = {
	{ "ID", true },     { "USER", false }, { "UID", true }, { "SERVICE", false },
	{ "TTY", false },   { "RHOST", false }, { "PID", true }, { "CLASS", false },
	{ "TYPE", false },  { "SEAT", false },  { "AGE", true },
};

static int session_add_row(struct table *t, const struct proto_session_info *s, time_t now)
{
	char id[24], uid[16], pid[16], age[32];
	const char *cells[11];

	snprintf(id, sizeof(id), "%" PRIu64, s->id);
	snprintf(uid, sizeof(uid), "%" PRIu32, s->uid);
	format_pid(pid, sizeof(pid), s->pid);
	format_age(age, sizeof(age), s->since, now);
	cells[0] = id;
	cells[1] = s->user;
	cells[2] = uid;
	cells[3] = s->service;
	cells[4] = s->tty;
	cells[5] = s->rhost;
	cells[6] = pid;
	cells[7] = s->session_class;
	cells[8] = s->session_type;
	cells[9] = s->seat;
	cells[10] = age;
	if (table_add_row(t, cells) < 0) {
		ctl_err("collecting the session list: %s", strerror(errno));
		return CTL_EXIT_FAILED;
	}
	return 0;
}

static void session_json(struct json *j, const struct proto_session_info *s)
{
	json_begin_object(j);
	json_key(j, "id");
	json_uint(j, s->id);
	json_key(j, "uid");
	json_uint(j, s->uid);
	json_key(j, "user");
	json_string(j, s->user);
	json_key(j, "service");
	json_string(j, s->service);
	json_key(j, "tty");
	json_string_or_null(j, s->tty);
	json_key(j, "rhost");
	json_string_or_null(j, s->rhost);
	json_key(j, "remote");
	json_bool(j, (s->flags & PROTO_OPEN_REMOTE) != 0);
	json_key(j, "pid");
	json_int(j, s->pid);
	json_key(j, "since");
	json_uint(j, s->since);
	json_key(j, "class");
	json_string(j, s->session_class);
	json_key(j, "type");
	json_string_or_null(j, s->session_type);
	json_key(j, "seat");
	json_string_or_null(j, s->seat);
	json_key(j, "vtnr");
	if (s->vtnr)
		json_uint(j, s->vtnr);
	else
		json_null(j);
	json_end_object(j);
}

/* ---- commands ---------------------------------------------------------- */

/* LIST_USERS and LIST_SESSIONS share a shape: item_type * n, END. */
static int list_run(const struct ctl *ctl, uint16_t request, uint16_t item_type,
	const struct table_column *columns, size_t ncolumns, const char *empty_text)
{
	struct proto_msg req = { .type = request };
	struct proto_msg reply;
	struct ctl_conn conn;
	struct outbuf ob = { 0 };
	struct table table;
	struct json json = { 0 };
	size_t nitems = 0;
	int rc;

	rc = request_send(ctl, &conn, &req);
	if (rc != 0)
		return rc;
	table_init(&table, columns, ncolumns);
	if (ctl->json) {
		rc = outbuf_open(&ob);
		if (rc != 0) {
			ctl_conn_close(&conn);
			return rc;
		}
		json_init(&json, ob.f);
		json_begin_array(&json);
	}
	for (;;) {
		rc = ctl_conn_recv(&conn, &reply);
		if (rc != 0)
			break;
		if (reply.type == PROTO_END)
			break;
		if (reply.type != item_type) {
			rc = reply_unexpected(&reply, request);
			break;
		}
		if (++nitems > MAX_ITEMS) {
			ctl_err("reply from dinit-userservd too long: more than %d entries", MAX_ITEMS);
			rc = CTL_EXIT_FAILED;
			break;
		}
		if (item_type == PROTO_USER_INFO) {
			if (ctl->json) {
				json_begin_object(&json);
				user_json_members(&json, &reply.u.user);
				json_key(&json, "sessions");
				json_uint(&json, reply.u.user.sessions);
				json_end_object(&json);
			} else {
				rc = user_add_row(&table, &reply.u.user);
			}
		} else {
			if (ctl->json)
				session_json(&json, &reply.u.session);
			else
				rc = session_add_row(&table, &reply.u.session, ctl->now);
		}
		if (rc != 0)
			break;
	}
	ctl_conn_close(&conn);

	if (ctl->json) {
		json_end_array(&json);
		json_finish(&json);
		int close_rc = outbuf_close(&ob, rc == 0);
		if (rc == 0)
			rc = close_rc;
	} else if (rc == 0) {
		if (table.nrows == 0)
			printf("%s\n", empty_text);
		else
			table_print(&table, stdout);
	}
	table_finish(&table);
	return rc;
}

static int cmd_list_users(const struct ctl *ctl, const struct command *cmd, const char *user)
{
	return list_run(ctl, PROTO_LIST_USERS, PROTO_USER_INFO, user_columns,
		sizeof(user_columns) / sizeof(user_columns[0]), "no users");
}

static int cmd_list_sessions(const struct ctl *ctl, const struct command *cmd, const char *user)
{
	return list_run(ctl, PROTO_LIST_SESSIONS, PROTO_SESSION_INFO, session_columns,
		sizeof(session_columns) / sizeof(session_columns[0]), "no sessions");
}

static void status_print(const struct proto_user_info *u, const struct table *sessions, time_t now)
{
	char since[64], age[32], pid[16];
	char *name = text_sanitize(u->name);
	char *state = text_sanitize(u->state);
	char *backend = text_sanitize(u->backend);
	char *failure = text_sanitize(u->last_failure[0] ? u->last_failure : "none");
	char *rundir = text_sanitize(u->rundir[0] ? u->rundir : "none");

	format_time(since, sizeof(since), u->since);
	format_age(age, sizeof(age), u->since, now);
	format_pid(pid, sizeof(pid), u->manager_pid);
	/* text_sanitize only fails for want of memory; print what we can. */
	printf("user:         %s\n", name ? name : "?");
	printf("uid:          %" PRIu32 "\n", u->uid);
	printf("gid:          %" PRIu32 "\n", u->gid);
	printf("state:        %s\n", state ? state : "?");
	printf("manager pid:  %s\n", pid);
	printf("backend:      %s\n", backend ? backend : "?");
	if (u->since != 0)
		printf("since:        %s (%s ago)\n", since, age);
	else
		printf("since:        -\n");
	printf("restarts:     %" PRIu32 "\n", u->restarts);
	printf("last failure: %s\n", failure ? failure : "?");
	printf("rundir:       %s\n", rundir ? rundir : "?");
	printf("linger:       %s\n", u->linger ? "yes" : "no");
	printf("sessions:     %zu\n", sessions->nrows);
	if (sessions->nrows > 0) {
		putchar('\n');
		table_print(sessions, stdout);
	}
	free(name);
	free(state);
	free(backend);
	free(failure);
	free(rundir);
}

static int cmd_status(const struct ctl *ctl, const struct command *cmd, const char *user)
{
	struct proto_msg req = { .type = PROTO_STATUS };
	struct proto_msg reply;
	struct proto_user_info info = { 0 };
	struct ctl_conn conn;
	struct outbuf ob = { 0 };
	struct table sessions;
	struct json json = { 0 };
	bool have_user = false;
	size_t nitems = 0;
	int rc;

	proto_strlcpy(req.u.status.user, user, sizeof(req.u.status.user));
	rc = request_send(ctl, &conn, &req);
	if (rc != 0)
		return rc;
	table_init(&sessions, session_columns, sizeof(session_columns) / sizeof(session_columns[0]));
	if (ctl->json) {
		rc = outbuf_open(&ob);
		if (rc != 0) {
			ctl_conn_close(&conn);
			return rc;
		}
		json_init(&json, ob.f);
	}
	/* Expected: USER_INFO, SESSION_INFO * n, END; or a lone error RESULT. */
	for (;;) {
		rc = ctl_conn_recv(&conn, &reply);
		if (rc != 0)
			break;
		if (!have_user) {
			if (reply.type != PROTO_USER_INFO) {
				rc = reply_unexpected(&reply, PROTO_STATUS);
				break;
			}
			info = reply.u.user;
			have_user = true;
			if (ctl->json) {
				json_begin_object(&json);
				user_json_members(&json, &info);
				json_key(&json, "sessions");
				json_begin_array(&json);
			}
			continue;
		}
		if (reply.type == PROTO_END)
			break;
		if (reply.type != PROTO_SESSION_INFO) {
			rc = reply_unexpected(&reply, PROTO_STATUS);
			break;
		}
		if (++nitems > MAX_ITEMS) {
			ctl_err("reply from dinit-userservd too long: more than %d sessions", MAX_ITEMS);
			rc = CTL_EXIT_FAILED;
			break;
		}
		if (reply.u.session.uid != info.uid) {
			ctl_err("unexpected reply from dinit-userservd to a status request: a "
				"session of uid %" PRIu32 " in the status of uid %" PRIu32,
				reply.u.session.uid, info.uid);
			rc = CTL_EXIT_FAILED;
			break;
		}
		if (ctl->json)
			session_json(&json, &reply.u.session);
		else if ((rc = session_add_row(&sessions, &reply.u.session, ctl->now)) != 0)
			break;
	}
	ctl_conn_close(&conn);

	if (ctl->json) {
		if (have_user) {
			json_end_array(&json);
			json_end_object(&json);
		}
		json_finish(&json);
		int close_rc = outbuf_close(&ob, rc == 0);
		if (rc == 0)
			rc = close_rc;
	} else if (rc == 0) {
		status_print(&info, &sessions, ctl->now);
	}
	table_finish(&sessions);
	return rc;
}

static int request_result(const struct ctl *ctl, const struct command *cmd,
	const struct proto_msg *req);

static int cmd_control(const struct ctl *ctl, const struct command *cmd, const char *user)
{
	struct proto_msg req = { .type = PROTO_CONTROL };

	req.u.control.op = cmd->op;
	proto_strlcpy(req.u.control.user, user ? user : "", sizeof(req.u.control.user));
	return request_result(ctl, cmd, &req);
}

/* Send req, expect one RESULT, and report it (text, or the JSON result object). */
static int request_result(const struct ctl *ctl, const struct command *cmd,
	const struct proto_msg *req)
{
	struct proto_msg reply;
	struct ctl_conn conn;
	const struct proto_result *res;
	int rc;

	rc = request_send(ctl, &conn, req);
	if (rc != 0)
		return rc;
	rc = ctl_conn_recv(&conn, &reply);
	ctl_conn_close(&conn);
	if (rc != 0)
		return rc;
	if (reply.type != PROTO_RESULT) {
		ctl_err("unexpected %s reply from dinit-userservd to a control request (%s)",
			proto_type_name(reply.type), cmd->name);
		return CTL_EXIT_FAILED;
	}
	if (reply.u.result.code < 0) {
		ctl_err("malformed result from dinit-userservd: code %" PRId32 " (not an errno value)",
			reply.u.result.code);
		return CTL_EXIT_FAILED;
	}
	res = &reply.u.result;

	if (ctl->json) {
		struct outbuf ob;
		struct json json;

		rc = outbuf_open(&ob);
		if (rc != 0)
			return rc;
		json_init(&json, ob.f);
		json_begin_object(&json);
		json_key(&json, "ok");
		json_bool(&json, res->code == 0);
		json_key(&json, "code");
		json_int(&json, res->code);
		json_key(&json, "message");
		json_string(&json, res->message);
		json_end_object(&json);
		json_finish(&json);
		rc = outbuf_close(&ob, true);
		if (rc != 0)
			return rc;
	}
	if (res->code != 0)
		return report_daemon_error(res);
	if (!ctl->json) {
		char *msg = text_sanitize(res->message[0] ? res->message : "done");
		puts(msg ? msg : "done");
		free(msg);
	}
	return CTL_EXIT_OK;
}

/* terminate-session ID: the argument is a session id, not a user. */
static int cmd_terminate(const struct ctl *ctl, const struct command *cmd, const char *arg)
{
	struct proto_msg req = { .type = PROTO_TERMINATE };
	char *end;

	errno = 0;
	unsigned long long id = strtoull(arg, &end, 10);
	if (arg[0] < '0' || arg[0] > '9' || *end || errno || id == 0)
		return usage_error("%s: '%s' is not a session id (see list-sessions)", cmd->name,
			arg);
	req.u.terminate.session_id = id;
	return request_result(ctl, cmd, &req);
}

/* ---- manager environment ------------------------------------------------ */

static const char *user_arg_problem(const char *name);

/* Commands whose run is NULL: op is one of these, arguments are parsed here. */
enum { ENV_CMD_SET = 1, ENV_CMD_UNSET, ENV_CMD_IMPORT, ENV_CMD_SHOW };

/* Send one ENV request of vars[0..n) and check its RESULT. */
static int env_send(const struct ctl *ctl, struct proto_msg *req)
{
	struct ctl_conn conn;
	struct proto_msg reply;
	int rc = request_send(ctl, &conn, req);
	if (rc != 0)
		return rc;
	rc = ctl_conn_recv(&conn, &reply);
	ctl_conn_close(&conn);
	if (rc != 0)
		return rc;
	if (reply.type != PROTO_RESULT || reply.u.result.code < 0)
		return reply_unexpected(&reply, PROTO_ENV);
	if (reply.u.result.code != 0)
		return report_daemon_error(&reply.u.result);
	return 0;
}

static int env_show(const struct ctl *ctl, struct proto_msg *req)
{
	struct ctl_conn conn;
	struct proto_msg reply;
	struct outbuf ob = { 0 };
	struct json json = { 0 };
	size_t nitems = 0;
	int rc = request_send(ctl, &conn, req);
	if (rc != 0)
		return rc;
	rc = outbuf_open(&ob);
	if (rc != 0) {
		ctl_conn_close(&conn);
		return rc;
	}
	json_init(&json, ob.f);
	if (ctl->json)
		json_begin_object(&json);
	for (;;) {
		rc = ctl_conn_recv(&conn, &reply);
		if (rc != 0 || reply.type == PROTO_END)
			break;
		if (reply.type != PROTO_ENV || reply.u.env.op != PROTO_ENV_LIST) {
			rc = reply_unexpected(&reply, PROTO_ENV);
			break;
		}
		const char *v = reply.u.env.vars;
		for (uint32_t i = 0; i < reply.u.env.count; v += strlen(v) + 1, i++) {
			if (++nitems > MAX_ITEMS)
				break;
			const char *eq = strchr(v, '=');
			if (ctl->json) {
				char name[PROTO_ENV_VAR_MAX + 1];
				snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
				json_key(&json, name);
				json_string(&json, eq + 1);
			} else {
				fprintf(ob.f, "%s\n", v);
			}
		}
	}
	ctl_conn_close(&conn);
	if (ctl->json) {
		json_end_object(&json);
		json_finish(&json);
	}
	int close_rc = outbuf_close(&ob, rc == 0);
	return rc ? rc : close_rc;
}

/*
 * setenv|unsetenv|import-environment|show-environment [-u USER] ARG...:
 * as many variables per request as fit, each request applied whole.
 */
static int env_main(const struct ctl *ctl, const struct command *cmd, const char *user,
	int argc, char **argv)
{
	struct proto_msg req = { .type = PROTO_ENV };
	size_t used = 0;
	int i = 0, rc;

	if (!user)
		user = "";
	else if (user_arg_problem(user))
		return usage_error("%s: %s", cmd->name, user_arg_problem(user));
	proto_strlcpy(req.u.env.user, user, sizeof(req.u.env.user));
	if (cmd->op == ENV_CMD_SHOW) {
		if (i < argc)
			return usage_error("%s: unexpected argument '%s'", cmd->name, argv[i]);
		req.u.env.op = PROTO_ENV_SHOW;
		return env_show(ctl, &req);
	}
	if (i >= argc)
		return usage_error("%s needs at least one %s", cmd->name,
			cmd->op == ENV_CMD_SET ? "NAME=VALUE" : "NAME");
	req.u.env.op = cmd->op == ENV_CMD_UNSET ? PROTO_ENV_UNSET : PROTO_ENV_SET;
	char var[PROTO_ENV_VAR_MAX + 2];
	bool any = false;
	for (; i < argc; i++) {
		const char *a = argv[i];
		size_t len = strlen(a);
		const char *eq = strchr(a, '=');
		size_t nl = eq ? (size_t)(eq - a) : len;
		if (cmd->op == ENV_CMD_SET ? !eq : eq != NULL)
			return usage_error("%s: '%s': expected %s", cmd->name, a,
				cmd->op == ENV_CMD_SET ? "NAME=VALUE" : "a NAME");
		if (!proto_env_name_valid(a, nl))
			return usage_error("%s: '%.*s' is not a variable name", cmd->name, (int)nl, a);
		if (cmd->op == ENV_CMD_IMPORT) {
			const char *val = getenv(a);
			if (!val) {
				ctl_err("warning: %s is not set: skipped", a);
				continue;
			}
			if (snprintf(var, sizeof(var), "%s=%s", a, val) > PROTO_ENV_VAR_MAX) {
				ctl_err("warning: %s is too long (at most %d bytes): skipped", a,
					PROTO_ENV_VAR_MAX);
				continue;
			}
		} else {
			if (len > PROTO_ENV_VAR_MAX)
				return usage_error("%s: '%.32s...' is too long (at most %d bytes)",
					cmd->name, a, PROTO_ENV_VAR_MAX);
			snprintf(var, sizeof(var), "%s", a);
		}
		for (const unsigned char *p = (const unsigned char *)var; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				return usage_error("%s: %.*s: control characters cannot be sent",
					cmd->name, (int)nl, a);
		if (proto_env_append(&req.u.env, &used, var) < 0) {
			rc = env_send(ctl, &req);
			if (rc != 0)
				return rc;
			req.u.env.count = 0;
			used = 0;
			proto_env_append(&req.u.env, &used, var);
		}
		any = true;
	}
	if (!any)
		return CTL_EXIT_OK; /* every named variable was unset: warned already */
	rc = env_send(ctl, &req);
	if (rc == 0 && ctl->json)
		printf("{\"ok\":true,\"code\":0,\"message\":\"environment changed\"}\n");
	return rc;
}

static const struct command commands[] = {
	{ "list-users", false, cmd_list_users, 0, "list the users the daemon knows" },
	{ "list-sessions", false, cmd_list_sessions, 0, "list the open sessions" },
	{ "status", true, cmd_status, 0, "show USER's service manager and sessions" },
	{ "enable-linger", true, cmd_control, PROTO_CTL_ENABLE_LINGER,
		"keep USER's manager running without sessions" },
	{ "disable-linger", true, cmd_control, PROTO_CTL_DISABLE_LINGER,
		"stop USER's manager again after the last session" },
	{ "stop-user", true, cmd_control, PROTO_CTL_STOP_USER, "stop USER's service manager" },
	{ "restart-user", true, cmd_control, PROTO_CTL_RESTART_USER,
		"restart USER's service manager" },
	{ "terminate-session", true, cmd_terminate, 0,
		"end session ID (root, or the session's own user)" },
	{ "setenv", false, NULL, ENV_CMD_SET,
		"[-u USER] NAME=VALUE...: set variables in the manager's environment" },
	{ "unsetenv", false, NULL, ENV_CMD_UNSET, "[-u USER] NAME...: remove them" },
	{ "import-environment", false, NULL, ENV_CMD_IMPORT,
		"[-u USER] NAME...: setenv with this process's values" },
	{ "show-environment", false, NULL, ENV_CMD_SHOW,
		"[-u USER]: print what setenv has set" },
	{ "reload", false, cmd_control, PROTO_CTL_RELOAD, "make the daemon reload its config" },
	{ "reexec", false, cmd_control, PROTO_CTL_REEXEC,
		"re-execute the daemon in place, keeping every session" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_help(void)
{
	printf("Usage: " PROG " [OPTION]... COMMAND [USER]\n"
	       "Query and control dinit-userservd, which runs a service manager for each\n"
	       "logged-in user.\n"
	       "\n"
	       "Options:\n"
	       "      --socket PATH  control socket (default " PROTO_SOCKET_DEFAULT ")\n"
	       "      --json         print JSON instead of text\n"
	       "  -u USER            the user of the environment commands (default: you)\n"
	       "  -h, --help         show this help and exit\n"
	       "  -V, --version      show the version and exit\n"
	       "\n"
	       "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "%s%s", commands[i].name,
			!commands[i].takes_user ? "" :
			commands[i].run == cmd_terminate ? " ID" : " USER");
		printf("  %-20s %s\n", name, commands[i].summary);
	}
	printf("\n"
	       "USER is a user name or a numeric uid. Anyone may query; changing state needs root,\n"
	       "except that a user may stop-user, restart-user and terminate-session their own\n"
	       "(and enable-linger/disable-linger themselves when the config allows it).\n"
	       "Exit status: 0 success, 1 the daemon refused or failed, 2 usage error,\n"
	       "3 the daemon cannot be reached.\n");
}

/* NULL, or why name cannot be sent as a user. */
static const char *user_arg_problem(const char *name)
{
	if (name[0] == '\0')
		return "empty user name";
	if (strlen(name) >= PROTO_NAME_SIZE)
		return "user name too long";
	if (str_has_control(name))
		return "user name contains control characters";
	return NULL;
}

/* Values of the options that have no short form. */
enum { OPT_SOCKET = 256, OPT_JSON };

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { .socket_path = PROTO_SOCKET_DEFAULT, .json = false };
	const struct command *cmd = NULL;
	const char *user = NULL;
	int opt, rc;

	setlocale(LC_ALL, "");
	opterr = 0;
	const char *env_user = NULL; /* -u USER of the environment commands */
	while ((opt = getopt_long(argc, argv, ":hVu:", options, NULL)) != -1) {
		switch (opt) {
		case 'u':
			env_user = optarg;
			break;
		case OPT_SOCKET:
			if (optarg[0] == '\0')
				return usage_error("--socket needs a non-empty path");
			ctl.socket_path = optarg;
			break;
		case OPT_JSON:
			ctl.json = true;
			break;
		case 'h':
			print_help();
			return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILED;
		case 'V':
			printf(PROG " " DUS_VERSION "\n");
			return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILED;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default: {
			/*
			 * optopt is 0 for an unknown long option, the option's value
			 * for a known one given an argument it does not take, and the
			 * letter for an unknown short one (optind may still point into
			 * that word, so only the long cases can name argv[optind - 1]).
			 */
			const char *word = argv[optind - 1];
			const char *eq = strchr(word, '=');

			if (optopt == OPT_SOCKET || optopt == OPT_JSON || optopt == 'h' || optopt == 'V')
				return usage_error("option '%.*s' takes no argument",
					eq ? (int)(eq - word) : (int)strlen(word), word);
			if (optopt != 0)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s'", word);
		}
		}
	}

	if (optind >= argc)
		return usage_error("missing command");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	}
	if (!cmd)
		return usage_error("unknown command '%s'", argv[optind]);
	optind++;
	if (env_user && cmd->run)
		return usage_error("%s: -u is for the environment commands", cmd->name);
	if (!cmd->run) {
		ctl.now = time(NULL);
		rc = env_main(&ctl, cmd, env_user, argc - optind, argv + optind);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			ctl_err("writing output: %s", strerror(errno));
			if (rc == CTL_EXIT_OK)
				rc = CTL_EXIT_FAILED;
		}
		return rc;
	}
	if (cmd->takes_user) {
		const char *problem;

		if (optind >= argc)
			return usage_error("%s needs a USER argument", cmd->name);
		user = argv[optind++];
		problem = user_arg_problem(user);
		if (problem)
			return usage_error("%s: %s", cmd->name, problem);
	}
	if (optind < argc)
		return usage_error("%s: unexpected argument '%s'", cmd->name, argv[optind]);

	ctl.now = time(NULL);
	rc = cmd->run(&ctl, cmd, user);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_err("writing output: %s", strerror(errno));
		if (rc == CTL_EXIT_OK)
			rc = CTL_EXIT_FAILED;
	}
	return rc;
}
