/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pam_dinit_userservd: PAM session module registering logins with
 * dinit-userservd.
 *
 * open_session sends OPEN_SESSION and waits, always against a deadline, for
 * the daemon's OPEN_REPLY: READY at once, or WAIT followed by READY/FAILED
 * once the user's service manager has started. close_session sends
 * CLOSE_SESSION for the session id remembered with pam_set_data.
 *
 * Invariants this file keeps:
 *  - no global state, no threads, no signal dispositions touched (SIGPIPE is
 *    avoided with MSG_NOSIGNAL);
 *  - the only fd it creates is the control connection: SOCK_CLOEXEC, and
 *    closed before any pam_sm_* function returns, on every path;
 *  - no blocking call without a deadline: connect and send are bounded by
 *    SO_SNDTIMEO, receiving by poll (the connection is src/common/client.c,
 *    which keeps these rules too);
 *  - a daemon that is not running (socket missing or refusing) costs the
 *    login nothing: PAM_SUCCESS at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "client.h"
#include "proto.h"
#include "util.h"

#define PAM_DUS_EXPORT __attribute__((visibility("default")))

#define SESSION_DATA_KEY "dinit_userservd_session"

/* The daemon answers every request at once: a hard cap on that answer. */
#define REPLY_TIMEOUT_MS 5000
/* Upper bound on the daemon's WAIT timeout_ms, whatever it asks for. */
#define WAIT_TIMEOUT_MAX_MS 600000

struct args {
	const char *socket;
	bool norundir;
	bool debug;
	const char *session_class; /* class=, or NULL: XDG_SESSION_CLASS, else "user" */
	const char *session_type;  /* type=, or NULL: XDG_SESSION_TYPE */
};

static void args_parse(pam_handle_t *pamh, int argc, const char **argv, struct args *args)
{
	args->socket = PROTO_SOCKET_DEFAULT;
	args->norundir = false;
	args->debug = false;
	args->session_class = NULL;
	args->session_type = NULL;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (strncmp(arg, "socket=", 7) == 0) {
			if (arg[7] == '\0')
				pam_syslog(pamh, LOG_WARNING, "ignoring empty argument: %s", arg);
			else
				args->socket = arg + 7;
		} else if (strcmp(arg, "norundir") == 0) {
			args->norundir = true;
		} else if (strcmp(arg, "debug") == 0) {
			args->debug = true;
		} else if (strncmp(arg, "class=", 6) == 0 || strncmp(arg, "type=", 5) == 0) {
			bool cls = arg[0] == 'c';
			const char *v = arg + (cls ? 6 : 5);
			if (!proto_token_valid(v) || v[0] == '\0')
				pam_syslog(pamh, LOG_WARNING, "ignoring bad argument: %s "
					"(letters, digits, '-' and '_', at most %d)", arg,
					PROTO_TOKEN_SIZE - 1);
			else if (cls)
				args->session_class = v;
			else
				args->session_type = v;
		} else {
			pam_syslog(pamh, LOG_WARNING, "ignoring unknown argument: %s", arg);
		}
	}
}

/* Milliseconds on CLOCK_MONOTONIC; deadlines are absolute values of it. */
static int64_t now_ms(void)
{
	return (int64_t)monotonic_ms();
}

/*
 * Report a failed client step (client.h). CLIENT_OK and CLIENT_TIMEOUT pass
 * through unlogged: the callers log a timeout with what was waited for.
 * CLIENT_ABSENT is a debug line only: no daemon costs the login nothing.
 */
static enum client_status conn_report(pam_handle_t *pamh, const struct args *args,
	const struct client *c, enum client_status st)
{
	if (st == CLIENT_ABSENT) {
		if (args->debug)
			pam_syslog(pamh, LOG_DEBUG, "%s", c->message);
	} else if (st != CLIENT_OK && st != CLIENT_TIMEOUT) {
		pam_syslog(pamh, LOG_ERR, "%s", c->message);
	}
	return st;
}

static void session_id_free(pam_handle_t *pamh, void *data, int error_status)
{
	(void)pamh;
	(void)error_status;
	free(data);
}

/* Remember id for close_session; replaces (and frees) an earlier value. */
static int session_id_store(pam_handle_t *pamh, uint64_t id)
{
	uint64_t *p = malloc(sizeof(*p));
	if (!p) {
		pam_syslog(pamh, LOG_CRIT, "out of memory");
		return -1;
	}
	*p = id;
	int r = pam_set_data(pamh, SESSION_DATA_KEY, p, session_id_free);
	if (r != PAM_SUCCESS) {
		free(p);
		pam_syslog(pamh, LOG_ERR, "pam_set_data: %s", pam_strerror(pamh, r));
		return -1;
	}
	return 0;
}

/* 0 when no session is being tracked. */
static uint64_t session_id_load(pam_handle_t *pamh)
{
	const void *data = NULL;
	if (pam_get_data(pamh, SESSION_DATA_KEY, &data) != PAM_SUCCESS || !data)
		return 0;
	return *(const uint64_t *)data;
}

static void session_id_forget(pam_handle_t *pamh)
{
	pam_set_data(pamh, SESSION_DATA_KEY, NULL, NULL);
}

static int env_export(pam_handle_t *pamh, const char *name, const char *value, bool debug)
{
	char buf[64 + PROTO_PATH_SIZE];
	int n = snprintf(buf, sizeof(buf), "%s=%s", name, value);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1; /* cannot happen: value fits PROTO_PATH_SIZE */
	int r = pam_putenv(pamh, buf);
	if (r != PAM_SUCCESS) {
		pam_syslog(pamh, LOG_ERR, "pam_putenv %s: %s", name, pam_strerror(pamh, r));
		return -1;
	}
	if (debug)
		pam_syslog(pamh, LOG_DEBUG, "exported %s", buf);
	return 0;
}

static const char *pam_item_str(pam_handle_t *pamh, int item)
{
	const void *v = NULL;
	if (pam_get_item(pamh, item, &v) != PAM_SUCCESS || !v)
		return "";
	return v;
}

/*
 * Copy an informational string (service, tty, rhost) into its field: the
 * daemon only shows it, so overlong values are truncated and control
 * characters, which the wire format rejects, become '?'.
 */
static void field_copy_sanitized(char *dst, const char *src, size_t size)
{
	proto_strlcpy(dst, src, size);
	for (unsigned char *p = (unsigned char *)dst; *p; p++) {
		if (char_is_control(*p))
			*p = '?';
	}
}

static bool rhost_is_remote(const char *rhost)
{
	return rhost[0] != '\0' && strcmp(rhost, "localhost") != 0 &&
		strcmp(rhost, "127.0.0.1") != 0 && strcmp(rhost, "::1") != 0;
}

/*
 * One context value: the module argument when given, else the PAM environment
 * variable (pam_env, a display manager), else def. A bad value from the
 * environment is ignored with a warning: it must not cost the login.
 */
static void context_copy(pam_handle_t *pamh, char *dst, size_t size, const char *arg,
	const char *var, const char *def)
{
	const char *v = arg;
	if (!v) {
		v = pam_getenv(pamh, var);
		if (v && v[0] != '\0' && !proto_token_valid(v)) {
			pam_syslog(pamh, LOG_WARNING, "ignoring %s: not a short token", var);
			v = NULL;
		}
	}
	proto_strlcpy(dst, v && v[0] ? v : def, size);
}

/* Session class, type, seat and VT: module arguments, else XDG_* from PAM. */
static void session_context_fill(pam_handle_t *pamh, const struct args *args,
	struct proto_open_session *req)
{
	context_copy(pamh, req->session_class, sizeof(req->session_class), args->session_class,
		"XDG_SESSION_CLASS", "user");
	context_copy(pamh, req->session_type, sizeof(req->session_type), args->session_type,
		"XDG_SESSION_TYPE", "");
	context_copy(pamh, req->seat, sizeof(req->seat), NULL, "XDG_SEAT", "");
	const char *vt = pam_getenv(pamh, "XDG_VTNR");
	if (vt && vt[0]) {
		char *end;
		errno = 0;
		unsigned long n = strtoul(vt, &end, 10);
		if (*end || errno || n > PROTO_VTNR_MAX || vt[0] < '0' || vt[0] > '9')
			pam_syslog(pamh, LOG_WARNING, "ignoring XDG_VTNR: not a VT number");
		else
			req->vtnr = (uint32_t)n;
	}
}

/* Fill the OPEN_SESSION request; -1 (logged) when the user can't be sent. */
static int open_request_build(pam_handle_t *pamh, const struct args *args, struct proto_msg *msg)
{
	struct proto_open_session *req = &msg->u.open;
	memset(msg, 0, sizeof(*msg));
	msg->type = PROTO_OPEN_SESSION;

	const char *user = pam_item_str(pamh, PAM_USER);
	if (user[0] == '\0') {
		pam_syslog(pamh, LOG_ERR, "no user name (PAM_USER unset)");
		return -1;
	}
	if (strlen(user) >= sizeof(req->user) || str_has_control(user)) {
		pam_syslog(pamh, LOG_ERR, "user name too long or not printable");
		return -1;
	}
	proto_strlcpy(req->user, user, sizeof(req->user));

	const char *rhost = pam_item_str(pamh, PAM_RHOST);
	field_copy_sanitized(req->service, pam_item_str(pamh, PAM_SERVICE), sizeof(req->service));
	field_copy_sanitized(req->tty, pam_item_str(pamh, PAM_TTY), sizeof(req->tty));
	field_copy_sanitized(req->rhost, rhost, sizeof(req->rhost));

	if (rhost_is_remote(rhost))
		req->flags |= PROTO_OPEN_REMOTE;
	if (args->norundir)
		req->flags |= PROTO_OPEN_NORUNDIR;

	session_context_fill(pamh, args, req);

	const char *rundir = pam_getenv(pamh, "XDG_RUNTIME_DIR");
	if (rundir && rundir[0] != '\0') {
		if (strlen(rundir) < sizeof(req->rundir) && !str_has_control(rundir)) {
			proto_strlcpy(req->rundir, rundir, sizeof(req->rundir));
		} else {
			/* Keep the earlier module's value: ask the daemon not to set one. */
			pam_syslog(pamh, LOG_WARNING,
				"XDG_RUNTIME_DIR set earlier is too long or not printable; "
				"not managing the runtime directory");
			req->flags |= PROTO_OPEN_NORUNDIR;
		}
	}
	return 0;
}

/*
 * Handle one OPEN_REPLY (or RESULT). Returns PAM_SUCCESS when the login may
 * go on, PAM_SESSION_ERR when it failed (logged), or PAM_INCOMPLETE when the
 * reply was WAIT and a final reply must follow.
 */
static int open_reply_handle(pam_handle_t *pamh, const struct args *args, const char *user,
	const struct proto_msg *msg, bool final)
{
	if (msg->type == PROTO_RESULT) {
		int code = msg->u.result.code;
		pam_syslog(pamh, LOG_ERR, "dinit-userservd refused %s's session: %s (%s)", user,
			msg->u.result.message, code > 0 ? strerror(code) : "no error code");
		return PAM_SESSION_ERR;
	}
	if (msg->type != PROTO_OPEN_REPLY) {
		pam_syslog(pamh, LOG_ERR, "unexpected %s message from dinit-userservd",
			proto_type_name(msg->type));
		return PAM_SESSION_ERR;
	}

	const struct proto_open_reply *rep = &msg->u.open_reply;
	/* Remember the id first: close_session must work whatever happens next. */
	if (rep->session_id != 0 && session_id_load(pamh) != rep->session_id &&
		session_id_store(pamh, rep->session_id) != 0)
		return PAM_SESSION_ERR;
	if (rep->rundir[0] != '\0' && rep->rundir[0] != '/') {
		pam_syslog(pamh, LOG_ERR, "invalid runtime directory from dinit-userservd: %s",
			rep->rundir);
		return PAM_SESSION_ERR;
	}

	switch (rep->status) {
	case PROTO_OPEN_READY:
		if (args->debug)
			pam_syslog(pamh, LOG_DEBUG, "session %" PRIu64 " of %s ready",
				rep->session_id, user);
		if (rep->rundir[0] != '\0' &&
			env_export(pamh, "XDG_RUNTIME_DIR", rep->rundir, args->debug) != 0)
			return PAM_SESSION_ERR;
		if (rep->dbus_address[0] != '\0' &&
			env_export(pamh, "DBUS_SESSION_BUS_ADDRESS", rep->dbus_address,
				args->debug) != 0)
			return PAM_SESSION_ERR;
		return PAM_SUCCESS;
	case PROTO_OPEN_WAIT:
		if (final) {
			pam_syslog(pamh, LOG_ERR, "dinit-userservd sent WAIT twice for %s", user);
			return PAM_SESSION_ERR;
		}
		if (args->debug)
			pam_syslog(pamh, LOG_DEBUG,
				"session %" PRIu64 " of %s: waiting up to %" PRIu32
				" ms for the service manager",
				rep->session_id, user, rep->timeout_ms);
		if (rep->rundir[0] != '\0' &&
			env_export(pamh, "XDG_RUNTIME_DIR", rep->rundir, args->debug) != 0)
			return PAM_SESSION_ERR;
		return PAM_INCOMPLETE;
	case PROTO_OPEN_FAILED:
		pam_syslog(pamh, LOG_ERR, "session of %s failed: %s", user,
			rep->message[0] ? rep->message : "no reason given");
		return PAM_SESSION_ERR;
	default:
		pam_syslog(pamh, LOG_ERR,
			"invalid OPEN_REPLY status %" PRIu32 " from dinit-userservd", rep->status);
		return PAM_SESSION_ERR;
	}
}

/*
 * Map a failed exchange to the PAM result; timeouts are logged here. The
 * daemon itself answers at once, so a timeout before its first reply is
 * told apart from the manager being slow to start.
 */
static int io_failure(pam_handle_t *pamh, enum client_status io, const char *user,
	int64_t waited_ms, bool daemon_answered)
{
	if (io == CLIENT_ABSENT)
		return PAM_SUCCESS;
	if (io == CLIENT_TIMEOUT)
		pam_syslog(pamh, LOG_ERR,
			"timed out after %" PRId64 " s waiting for %s's service manager%s",
			(waited_ms + 999) / 1000, user,
			daemon_answered ? "" : " (no answer from dinit-userservd)");
	return PAM_SESSION_ERR;
}

static int open_session(pam_handle_t *pamh, const struct args *args)
{
	struct proto_msg msg;
	if (open_request_build(pamh, args, &msg) != 0)
		return PAM_SESSION_ERR;
	char user[PROTO_NAME_SIZE];
	memcpy(user, msg.u.open.user, sizeof(user));

	struct client c;
	enum client_status io = conn_report(pamh, args, &c,
		client_open(&c, args->socket, now_ms() + REPLY_TIMEOUT_MS));
	if (io != CLIENT_OK)
		return io_failure(pamh, io, user, REPLY_TIMEOUT_MS, false);

	int ret;
	io = conn_report(pamh, args, &c, client_send(&c, &msg));
	if (io == CLIENT_OK)
		io = conn_report(pamh, args, &c, client_recv(&c, &msg));
	if (io != CLIENT_OK) {
		ret = io_failure(pamh, io, user, REPLY_TIMEOUT_MS, false);
		goto out;
	}
	ret = open_reply_handle(pamh, args, user, &msg, false);
	if (ret != PAM_INCOMPLETE)
		goto out;

	/* WAIT: the final reply comes once the manager is ready or has failed. */
	uint32_t wait_ms = msg.u.open_reply.timeout_ms;
	uint64_t wait_id = msg.u.open_reply.session_id;
	if (wait_ms > WAIT_TIMEOUT_MAX_MS)
		wait_ms = WAIT_TIMEOUT_MAX_MS;
	c.deadline_ms = now_ms() + wait_ms;
	io = conn_report(pamh, args, &c, client_recv(&c, &msg));
	if (io != CLIENT_OK) {
		ret = io_failure(pamh, io, user, wait_ms, true);
	} else if (msg.type == PROTO_OPEN_REPLY && msg.u.open_reply.session_id != wait_id) {
		/* Not the answer to this login: never take its id or its
		 * environment (the session stays the one WAIT named). */
		pam_syslog(pamh, LOG_ERR,
			"dinit-userservd answered for session %" PRIu64 " while %s's session %" PRIu64
			" waited: reply ignored", msg.u.open_reply.session_id, user, wait_id);
		ret = PAM_SESSION_ERR;
	} else {
		ret = open_reply_handle(pamh, args, user, &msg, true);
	}
out:
	client_close(&c);
	return ret;
}

static int close_session(pam_handle_t *pamh, const struct args *args, uint64_t id)
{
	struct client c;
	enum client_status io = conn_report(pamh, args, &c,
		client_open(&c, args->socket, now_ms() + REPLY_TIMEOUT_MS));
	if (io == CLIENT_ABSENT) {
		session_id_forget(pamh);
		return PAM_SUCCESS;
	}
	if (io != CLIENT_OK)
		goto fail;

	struct proto_msg msg;
	memset(&msg, 0, sizeof(msg));
	msg.type = PROTO_CLOSE_SESSION;
	msg.u.close.session_id = id;
	io = conn_report(pamh, args, &c, client_send(&c, &msg));
	if (io == CLIENT_OK)
		io = conn_report(pamh, args, &c, client_recv(&c, &msg));
	client_close(&c);
	if (io != CLIENT_OK)
		goto fail;

	if (msg.type != PROTO_RESULT) {
		pam_syslog(pamh, LOG_ERR, "unexpected %s reply to CLOSE_SESSION",
			proto_type_name(msg.type));
		return PAM_SESSION_ERR;
	}
	session_id_forget(pamh);
	if (msg.u.result.code != 0) {
		int code = msg.u.result.code;
		pam_syslog(pamh, LOG_ERR, "closing session %" PRIu64 " failed: %s (%s)", id,
			msg.u.result.message, code > 0 ? strerror(code) : "invalid error code");
		return PAM_SESSION_ERR;
	}
	if (args->debug)
		pam_syslog(pamh, LOG_DEBUG, "session %" PRIu64 " closed", id);
	return PAM_SUCCESS;

fail:
	if (io == CLIENT_TIMEOUT)
		pam_syslog(pamh, LOG_ERR,
			"timed out after %d s waiting for dinit-userservd to close session %"
			PRIu64,
			REPLY_TIMEOUT_MS / 1000, id);
	return PAM_SESSION_ERR;
}

/*
 * The session of a user's manager itself (the daemon's PAM service
 * "dinit-userservd", which the daemon marks with a PAM environment variable):
 * not a login. Registering it would make the manager's start wait for
 * itself. PAM_SUCCESS, not PAM_IGNORE: a stack where this module is the only
 * one (or "required") must not fail because of it.
 */
static bool manager_session(pam_handle_t *pamh)
{
	const void *service = NULL;
	if (pam_get_item(pamh, PAM_SERVICE, &service) == PAM_SUCCESS && service &&
		!strcmp(service, "dinit-userservd"))
		return true;
	const char *mark = pam_getenv(pamh, "DINIT_USERSERVD_MANAGER_SESSION");
	return mark && *mark;
}

PAM_DUS_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc,
	const char **argv)
{
	(void)flags;
	struct args args;
	args_parse(pamh, argc, argv, &args);
	if (args.debug)
		pam_syslog(pamh, LOG_DEBUG, "pam_dinit_userservd %s", DUS_VERSION);
	if (manager_session(pamh)) {
		if (args.debug)
			pam_syslog(pamh, LOG_DEBUG, "a manager's own session: nothing to do");
		return PAM_SUCCESS;
	}
	return open_session(pamh, &args);
}

PAM_DUS_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
	const char **argv)
{
	(void)flags;
	struct args args;
	args_parse(pamh, argc, argv, &args);
	uint64_t id = session_id_load(pamh);
	if (id == 0) {
		if (args.debug)
			pam_syslog(pamh, LOG_DEBUG, "no tracked session: nothing to close");
		return PAM_SUCCESS;
	}
	return close_session(pamh, &args, id);
}
