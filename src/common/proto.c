/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Control protocol encoding and validation; the wire format is described in
 * proto.h.
 *
 * Invariant kept by this file: proto_encode accepts exactly the messages
 * that proto_decode accepts back. A peer never receives a packet that its
 * own proto_decode would reject, and a packet that decodes re-encodes to the
 * same bytes.
 */
#include "proto.h"

#include <stdbool.h>
#include <string.h>

#include "util.h"

#define PROTO_HEADER_SIZE 4

/* Writes into a fixed buffer; after the first failure every write is a no-op. */
struct writer {
	uint8_t *buf;
	size_t cap;
	size_t pos;
	bool error;
};

/* Reads from a packet; after the first failure every read yields zero. */
struct reader {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	bool error;
};

/* A string may hold any byte except NUL and the control characters. */
static bool string_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (char_is_control(c))
			return false;
	}
	return true;
}

static uint8_t *writer_reserve(struct writer *w, size_t n)
{
	if (w->error || n > w->cap - w->pos) {
		w->error = true;
		return NULL;
	}
	uint8_t *p = w->buf + w->pos;
	w->pos += n;
	return p;
}

static void writer_u16(struct writer *w, uint16_t v)
{
	uint8_t *p = writer_reserve(w, 2);
	if (!p)
		return;
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void writer_u32(struct writer *w, uint32_t v)
{
	uint8_t *p = writer_reserve(w, 4);
	if (!p)
		return;
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void writer_i32(struct writer *w, int32_t v)
{
	writer_u32(w, (uint32_t)v);
}

static void writer_u64(struct writer *w, uint64_t v)
{
	uint8_t *p = writer_reserve(w, 8);
	if (!p)
		return;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* s is a field of size bytes: it must be NUL-terminated within the field. */
static void writer_string(struct writer *w, const char *s, size_t size)
{
	size_t len = strnlen(s, size);
	if (len >= size || !string_valid(s, len)) {
		w->error = true;
		return;
	}
	writer_u16(w, (uint16_t)len);
	uint8_t *p = writer_reserve(w, len);
	if (p)
		memcpy(p, s, len);
}

static const uint8_t *reader_take(struct reader *r, size_t n)
{
	if (r->error || n > r->len - r->pos) {
		r->error = true;
		return NULL;
	}
	const uint8_t *p = r->buf + r->pos;
	r->pos += n;
	return p;
}

static uint16_t reader_u16(struct reader *r)
{
	const uint8_t *p = reader_take(r, 2);
	if (!p)
		return 0;
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t reader_u32(struct reader *r)
{
	const uint8_t *p = reader_take(r, 4);
	if (!p)
		return 0;
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static int32_t reader_i32(struct reader *r)
{
	/* Two's complement reinterpretation without implementation-defined
	 * conversion of an out-of-range unsigned value. */
	uint32_t u = reader_u32(r);
	if (u <= INT32_MAX)
		return (int32_t)u;
	return (int32_t)(u - 0x80000000u) + INT32_MIN;
}

static uint64_t reader_u64(struct reader *r)
{
	const uint8_t *p = reader_take(r, 8);
	if (!p)
		return 0;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Fills a field of size bytes; on any failure dst holds "". */
static void reader_string(struct reader *r, char *dst, size_t size)
{
	dst[0] = '\0';
	uint16_t len = reader_u16(r);
	if (r->error)
		return;
	if (len >= size) {
		r->error = true;
		return;
	}
	const uint8_t *p = reader_take(r, len);
	if (!p)
		return;
	if (!string_valid((const char *)p, len)) {
		r->error = true;
		return;
	}
	memcpy(dst, p, len);
	dst[len] = '\0';
}

/* Value checks shared by both directions. */

static bool open_flags_valid(uint32_t flags)
{
	return (flags & ~(uint32_t)PROTO_OPEN_FLAGS_ALL) == 0;
}

static bool open_status_valid(uint32_t status)
{
	return status == PROTO_OPEN_READY || status == PROTO_OPEN_WAIT ||
		status == PROTO_OPEN_FAILED;
}

static bool control_op_valid(uint32_t op)
{
	return op >= 1 && op <= PROTO_CTL_OP_MAX;
}

static bool bool_valid(uint32_t v)
{
	return v == 0 || v == 1;
}

int proto_token_valid(const char *s)
{
	size_t len = strnlen(s, PROTO_TOKEN_SIZE);
	if (len >= PROTO_TOKEN_SIZE)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!(c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				(c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

int proto_env_name_valid(const char *s, size_t len)
{
	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				(c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

/* Session context fields: tokens, and a VT number in range. */
static bool context_valid(const char *cls, const char *type, const char *seat, uint32_t vtnr)
{
	return proto_token_valid(cls) && proto_token_valid(type) && proto_token_valid(seat) &&
		vtnr <= PROTO_VTNR_MAX;
}

static bool env_op_valid(uint32_t op)
{
	return op >= 1 && op <= PROTO_ENV_OP_MAX;
}

/* One string of an ENV message, for its op: NAME (UNSET) or NAME=VALUE. */
static bool env_var_valid(uint32_t op, const char *s, size_t len)
{
	if (len == 0 || len > PROTO_ENV_VAR_MAX || !string_valid(s, len))
		return false;
	const char *eq = memchr(s, '=', len);
	if (op == PROTO_ENV_UNSET)
		return !eq && proto_env_name_valid(s, len);
	if (op == PROTO_ENV_SET || op == PROTO_ENV_LIST)
		return eq && proto_env_name_valid(s, (size_t)(eq - s));
	return false; /* SHOW carries none */
}

int proto_env_append(struct proto_env *env, size_t *used, const char *var)
{
	size_t len = strlen(var);
	if (len + 1 > sizeof(env->vars) - *used)
		return -1;
	memcpy(env->vars + *used, var, len + 1);
	*used += len + 1;
	env->count++;
	return 0;
}

/* Message bodies: one encoder and one decoder each, fields in struct order. */

static void open_session_encode(struct writer *w, const struct proto_open_session *m)
{
	if (!open_flags_valid(m->flags)) {
		w->error = true;
		return;
	}
	writer_string(w, m->user, sizeof(m->user));
	writer_string(w, m->service, sizeof(m->service));
	writer_string(w, m->tty, sizeof(m->tty));
	writer_string(w, m->rhost, sizeof(m->rhost));
	writer_u32(w, m->flags);
	writer_string(w, m->rundir, sizeof(m->rundir));
	if (!context_valid(m->session_class, m->session_type, m->seat, m->vtnr)) {
		w->error = true;
		return;
	}
	writer_string(w, m->session_class, sizeof(m->session_class));
	writer_string(w, m->session_type, sizeof(m->session_type));
	writer_string(w, m->seat, sizeof(m->seat));
	writer_u32(w, m->vtnr);
}

static void open_session_decode(struct reader *r, struct proto_open_session *m)
{
	reader_string(r, m->user, sizeof(m->user));
	reader_string(r, m->service, sizeof(m->service));
	reader_string(r, m->tty, sizeof(m->tty));
	reader_string(r, m->rhost, sizeof(m->rhost));
	m->flags = reader_u32(r);
	if (!open_flags_valid(m->flags))
		r->error = true;
	reader_string(r, m->rundir, sizeof(m->rundir));
	reader_string(r, m->session_class, sizeof(m->session_class));
	reader_string(r, m->session_type, sizeof(m->session_type));
	reader_string(r, m->seat, sizeof(m->seat));
	m->vtnr = reader_u32(r);
	if (!context_valid(m->session_class, m->session_type, m->seat, m->vtnr))
		r->error = true;
}

static void open_reply_encode(struct writer *w, const struct proto_open_reply *m)
{
	if (!open_status_valid(m->status)) {
		w->error = true;
		return;
	}
	writer_u32(w, m->status);
	writer_u64(w, m->session_id);
	writer_u32(w, m->timeout_ms);
	writer_string(w, m->rundir, sizeof(m->rundir));
	writer_string(w, m->dbus_address, sizeof(m->dbus_address));
	writer_string(w, m->message, sizeof(m->message));
}

static void open_reply_decode(struct reader *r, struct proto_open_reply *m)
{
	m->status = reader_u32(r);
	if (!open_status_valid(m->status))
		r->error = true;
	m->session_id = reader_u64(r);
	m->timeout_ms = reader_u32(r);
	reader_string(r, m->rundir, sizeof(m->rundir));
	reader_string(r, m->dbus_address, sizeof(m->dbus_address));
	reader_string(r, m->message, sizeof(m->message));
}

static void close_session_encode(struct writer *w, const struct proto_close_session *m)
{
	writer_u64(w, m->session_id);
}

static void close_session_decode(struct reader *r, struct proto_close_session *m)
{
	m->session_id = reader_u64(r);
}

static void result_encode(struct writer *w, const struct proto_result *m)
{
	writer_i32(w, m->code);
	writer_string(w, m->message, sizeof(m->message));
}

static void result_decode(struct reader *r, struct proto_result *m)
{
	m->code = reader_i32(r);
	reader_string(r, m->message, sizeof(m->message));
}

static void status_encode(struct writer *w, const struct proto_status *m)
{
	writer_string(w, m->user, sizeof(m->user));
}

static void status_decode(struct reader *r, struct proto_status *m)
{
	reader_string(r, m->user, sizeof(m->user));
}

static void control_encode(struct writer *w, const struct proto_control *m)
{
	if (!control_op_valid(m->op)) {
		w->error = true;
		return;
	}
	writer_u32(w, m->op);
	writer_string(w, m->user, sizeof(m->user));
}

static void control_decode(struct reader *r, struct proto_control *m)
{
	m->op = reader_u32(r);
	if (!control_op_valid(m->op))
		r->error = true;
	reader_string(r, m->user, sizeof(m->user));
}

static void user_info_encode(struct writer *w, const struct proto_user_info *m)
{
	if (!bool_valid(m->linger)) {
		w->error = true;
		return;
	}
	writer_u32(w, m->uid);
	writer_u32(w, m->gid);
	writer_string(w, m->name, sizeof(m->name));
	writer_string(w, m->state, sizeof(m->state));
	writer_i32(w, m->manager_pid);
	writer_string(w, m->backend, sizeof(m->backend));
	writer_u64(w, m->since);
	writer_u32(w, m->restarts);
	writer_string(w, m->last_failure, sizeof(m->last_failure));
	writer_string(w, m->rundir, sizeof(m->rundir));
	writer_u32(w, m->linger);
	writer_u32(w, m->sessions);
}

static void user_info_decode(struct reader *r, struct proto_user_info *m)
{
	m->uid = reader_u32(r);
	m->gid = reader_u32(r);
	reader_string(r, m->name, sizeof(m->name));
	reader_string(r, m->state, sizeof(m->state));
	m->manager_pid = reader_i32(r);
	reader_string(r, m->backend, sizeof(m->backend));
	m->since = reader_u64(r);
	m->restarts = reader_u32(r);
	reader_string(r, m->last_failure, sizeof(m->last_failure));
	reader_string(r, m->rundir, sizeof(m->rundir));
	m->linger = reader_u32(r);
	if (!bool_valid(m->linger))
		r->error = true;
	m->sessions = reader_u32(r);
}

static void session_info_encode(struct writer *w, const struct proto_session_info *m)
{
	if (!open_flags_valid(m->flags)) {
		w->error = true;
		return;
	}
	writer_u64(w, m->id);
	writer_u32(w, m->uid);
	writer_string(w, m->user, sizeof(m->user));
	writer_string(w, m->service, sizeof(m->service));
	writer_string(w, m->tty, sizeof(m->tty));
	writer_string(w, m->rhost, sizeof(m->rhost));
	writer_u32(w, m->flags);
	writer_i32(w, m->pid);
	writer_u64(w, m->since);
	if (!m->session_class[0] ||
		!context_valid(m->session_class, m->session_type, m->seat, m->vtnr)) {
		w->error = true;
		return;
	}
	writer_string(w, m->session_class, sizeof(m->session_class));
	writer_string(w, m->session_type, sizeof(m->session_type));
	writer_string(w, m->seat, sizeof(m->seat));
	writer_u32(w, m->vtnr);
}

static void terminate_encode(struct writer *w, const struct proto_terminate *m)
{
	writer_u64(w, m->session_id);
}

static void terminate_decode(struct reader *r, struct proto_terminate *m)
{
	m->session_id = reader_u64(r);
}

static void env_encode(struct writer *w, const struct proto_env *m)
{
	if (!env_op_valid(m->op) || (m->op == PROTO_ENV_SHOW && m->count)) {
		w->error = true;
		return;
	}
	writer_u32(w, m->op);
	writer_string(w, m->user, sizeof(m->user));
	writer_u32(w, m->count);
	size_t pos = 0;
	for (uint32_t i = 0; i < m->count && !w->error; i++) {
		size_t len = strnlen(m->vars + pos, sizeof(m->vars) - pos);
		if (pos + len >= sizeof(m->vars) || !env_var_valid(m->op, m->vars + pos, len)) {
			w->error = true;
			return;
		}
		writer_u16(w, (uint16_t)len);
		uint8_t *p = writer_reserve(w, len);
		if (p)
			memcpy(p, m->vars + pos, len);
		pos += len + 1;
	}
}

static void env_decode(struct reader *r, struct proto_env *m)
{
	m->op = reader_u32(r);
	if (!env_op_valid(m->op))
		r->error = true;
	reader_string(r, m->user, sizeof(m->user));
	m->count = reader_u32(r);
	if (m->op == PROTO_ENV_SHOW && m->count)
		r->error = true;
	size_t pos = 0;
	for (uint32_t i = 0; i < m->count && !r->error; i++) {
		uint16_t len = reader_u16(r);
		const uint8_t *p = reader_take(r, len);
		if (!p)
			return;
		if ((size_t)len + 1 > sizeof(m->vars) - pos ||
			!env_var_valid(m->op, (const char *)p, len)) {
			r->error = true;
			return;
		}
		memcpy(m->vars + pos, p, len);
		m->vars[pos + len] = '\0';
		pos += (size_t)len + 1;
	}
}

static void session_info_decode(struct reader *r, struct proto_session_info *m)
{
	m->id = reader_u64(r);
	m->uid = reader_u32(r);
	reader_string(r, m->user, sizeof(m->user));
	reader_string(r, m->service, sizeof(m->service));
	reader_string(r, m->tty, sizeof(m->tty));
	reader_string(r, m->rhost, sizeof(m->rhost));
	m->flags = reader_u32(r);
	if (!open_flags_valid(m->flags))
		r->error = true;
	m->pid = reader_i32(r);
	m->since = reader_u64(r);
	reader_string(r, m->session_class, sizeof(m->session_class));
	reader_string(r, m->session_type, sizeof(m->session_type));
	reader_string(r, m->seat, sizeof(m->seat));
	m->vtnr = reader_u32(r);
	if (!m->session_class[0] ||
		!context_valid(m->session_class, m->session_type, m->seat, m->vtnr))
		r->error = true;
}

ssize_t proto_encode(const struct proto_msg *msg, void *buf, size_t cap)
{
	if (cap > PROTO_MSG_MAX)
		cap = PROTO_MSG_MAX;
	struct writer w = { .buf = buf, .cap = cap, .pos = 0, .error = false };
	writer_u16(&w, PROTO_VERSION);
	writer_u16(&w, msg->type);

	switch (msg->type) {
	case PROTO_OPEN_SESSION:
		open_session_encode(&w, &msg->u.open);
		break;
	case PROTO_OPEN_REPLY:
		open_reply_encode(&w, &msg->u.open_reply);
		break;
	case PROTO_CLOSE_SESSION:
		close_session_encode(&w, &msg->u.close);
		break;
	case PROTO_RESULT:
		result_encode(&w, &msg->u.result);
		break;
	case PROTO_STATUS:
		status_encode(&w, &msg->u.status);
		break;
	case PROTO_CONTROL:
		control_encode(&w, &msg->u.control);
		break;
	case PROTO_USER_INFO:
		user_info_encode(&w, &msg->u.user);
		break;
	case PROTO_SESSION_INFO:
		session_info_encode(&w, &msg->u.session);
		break;
	case PROTO_TERMINATE:
		terminate_encode(&w, &msg->u.terminate);
		break;
	case PROTO_ENV:
		env_encode(&w, &msg->u.env);
		break;
	case PROTO_LIST_USERS:
	case PROTO_LIST_SESSIONS:
	case PROTO_END:
		break;
	default:
		return -1;
	}
	if (w.error)
		return -1;
	return (ssize_t)w.pos;
}

int proto_decode(const void *buf, size_t len, struct proto_msg *msg)
{
	/* Zeroed first so that a decoded message compares equal byte for byte
	 * to any other decode of the same packet. */
	memset(msg, 0, sizeof(*msg));
	if (len > PROTO_MSG_MAX || len < PROTO_HEADER_SIZE)
		return -1;
	struct reader r = { .buf = buf, .len = len, .pos = 0, .error = false };
	if (reader_u16(&r) != PROTO_VERSION)
		return -1;
	msg->type = reader_u16(&r);

	switch (msg->type) {
	case PROTO_OPEN_SESSION:
		open_session_decode(&r, &msg->u.open);
		break;
	case PROTO_OPEN_REPLY:
		open_reply_decode(&r, &msg->u.open_reply);
		break;
	case PROTO_CLOSE_SESSION:
		close_session_decode(&r, &msg->u.close);
		break;
	case PROTO_RESULT:
		result_decode(&r, &msg->u.result);
		break;
	case PROTO_STATUS:
		status_decode(&r, &msg->u.status);
		break;
	case PROTO_CONTROL:
		control_decode(&r, &msg->u.control);
		break;
	case PROTO_USER_INFO:
		user_info_decode(&r, &msg->u.user);
		break;
	case PROTO_SESSION_INFO:
		session_info_decode(&r, &msg->u.session);
		break;
	case PROTO_TERMINATE:
		terminate_decode(&r, &msg->u.terminate);
		break;
	case PROTO_ENV:
		env_decode(&r, &msg->u.env);
		break;
	case PROTO_LIST_USERS:
	case PROTO_LIST_SESSIONS:
	case PROTO_END:
		break;
	default:
		return -1;
	}
	if (r.error || r.pos != r.len)
		return -1;
	return 0;
}

const char *proto_type_name(unsigned type)
{
	switch (type) {
	case PROTO_OPEN_SESSION: return "open_session";
	case PROTO_OPEN_REPLY: return "open_reply";
	case PROTO_CLOSE_SESSION: return "close_session";
	case PROTO_RESULT: return "result";
	case PROTO_LIST_USERS: return "list_users";
	case PROTO_LIST_SESSIONS: return "list_sessions";
	case PROTO_STATUS: return "status";
	case PROTO_USER_INFO: return "user_info";
	case PROTO_SESSION_INFO: return "session_info";
	case PROTO_END: return "end";
	case PROTO_CONTROL: return "control";
	case PROTO_TERMINATE: return "terminate";
	case PROTO_ENV: return "env";
	default: return "unknown";
	}
}

void proto_strlcpy(char *dst, const char *src, size_t size)
{
	if (size == 0)
		return;
	size_t len = strnlen(src, size - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}
