/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests for src/common/proto.c.
 *
 * Packets are built here by hand with a small byte builder that knows the
 * wire format from proto.h independently of proto.c, so an encoder and
 * decoder that agree with each other but not with the documented format
 * still fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto.h"

/* Byte builder for hand-made packets. */
struct pkt {
	uint8_t b[PROTO_MSG_MAX * 2];
	size_t n;
};

static void put_u16(struct pkt *p, uint16_t v)
{
	p->b[p->n++] = v & 0xff;
	p->b[p->n++] = v >> 8;
}

static void put_u32(struct pkt *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p->b[p->n++] = (v >> (8 * i)) & 0xff;
}

static void put_u64(struct pkt *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p->b[p->n++] = (v >> (8 * i)) & 0xff;
}

static void put_bytes(struct pkt *p, const void *s, size_t len)
{
	put_u16(p, (uint16_t)len);
	memcpy(p->b + p->n, s, len);
	p->n += len;
}

static void put_str(struct pkt *p, const char *s)
{
	put_bytes(p, s, strlen(s));
}

static void put_header(struct pkt *p, uint16_t type)
{
	p->n = 0;
	put_u16(p, PROTO_VERSION);
	put_u16(p, type);
}

/* A valid OPEN_SESSION packet; the variable parts are parameters. */
static void build_open(struct pkt *p, const char *user, uint32_t flags)
{
	put_header(p, PROTO_OPEN_SESSION);
	put_str(p, user);
	put_str(p, "login");
	put_str(p, "tty1");
	put_str(p, "");
	put_u32(p, flags);
	put_str(p, "");
	put_str(p, "user");
	put_str(p, "");
	put_str(p, "");
	put_u32(p, 0);
}

/* One representative message of every type, every field non-zero where it can be. */
static void msg_example(uint16_t type, struct proto_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	switch (type) {
	case PROTO_OPEN_SESSION:
		proto_strlcpy(m->u.open.user, "alice", sizeof(m->u.open.user));
		proto_strlcpy(m->u.open.service, "sshd", sizeof(m->u.open.service));
		proto_strlcpy(m->u.open.tty, "ssh", sizeof(m->u.open.tty));
		proto_strlcpy(m->u.open.rhost, "192.0.2.7", sizeof(m->u.open.rhost));
		m->u.open.flags = PROTO_OPEN_REMOTE | PROTO_OPEN_NORUNDIR;
		proto_strlcpy(m->u.open.rundir, "/run/user/1000", sizeof(m->u.open.rundir));
		proto_strlcpy(m->u.open.session_class, "greeter", sizeof(m->u.open.session_class));
		proto_strlcpy(m->u.open.session_type, "wayland", sizeof(m->u.open.session_type));
		proto_strlcpy(m->u.open.seat, "seat0", sizeof(m->u.open.seat));
		m->u.open.vtnr = 7;
		break;
	case PROTO_OPEN_REPLY:
		m->u.open_reply.status = PROTO_OPEN_WAIT;
		m->u.open_reply.session_id = 0x0123456789abcdefULL;
		m->u.open_reply.timeout_ms = 60000;
		proto_strlcpy(m->u.open_reply.rundir, "/run/user/1000",
			sizeof(m->u.open_reply.rundir));
		proto_strlcpy(m->u.open_reply.dbus_address, "unix:path=/run/user/1000/bus",
			sizeof(m->u.open_reply.dbus_address));
		proto_strlcpy(m->u.open_reply.message, "waiting for the manager",
			sizeof(m->u.open_reply.message));
		break;
	case PROTO_CLOSE_SESSION:
		m->u.close.session_id = UINT64_MAX;
		break;
	case PROTO_RESULT:
		m->u.result.code = -2147483647 - 1;
		proto_strlcpy(m->u.result.message, "no such user", sizeof(m->u.result.message));
		break;
	case PROTO_STATUS:
		proto_strlcpy(m->u.status.user, "1000", sizeof(m->u.status.user));
		break;
	case PROTO_CONTROL:
		m->u.control.op = PROTO_CTL_RESTART_USER;
		proto_strlcpy(m->u.control.user, "bob", sizeof(m->u.control.user));
		break;
	case PROTO_USER_INFO:
		m->u.user.uid = 1000;
		m->u.user.gid = 0xfffffffeu;
		proto_strlcpy(m->u.user.name, "alice", sizeof(m->u.user.name));
		proto_strlcpy(m->u.user.state, "ready", sizeof(m->u.user.state));
		m->u.user.manager_pid = -1;
		proto_strlcpy(m->u.user.backend, "/usr/libexec/custom", sizeof(m->u.user.backend));
		m->u.user.since = 1700000000;
		m->u.user.restarts = 3;
		proto_strlcpy(m->u.user.last_failure, "exit status 1",
			sizeof(m->u.user.last_failure));
		proto_strlcpy(m->u.user.rundir, "/run/user/1000", sizeof(m->u.user.rundir));
		m->u.user.linger = 1;
		m->u.user.sessions = 2;
		break;
	case PROTO_SESSION_INFO:
		m->u.session.id = 42;
		m->u.session.uid = 1000;
		proto_strlcpy(m->u.session.user, "alice", sizeof(m->u.session.user));
		proto_strlcpy(m->u.session.service, "login", sizeof(m->u.session.service));
		proto_strlcpy(m->u.session.tty, "tty2", sizeof(m->u.session.tty));
		proto_strlcpy(m->u.session.rhost, "host.example", sizeof(m->u.session.rhost));
		m->u.session.flags = PROTO_OPEN_REMOTE;
		m->u.session.pid = 4321;
		m->u.session.since = 1700000001;
		proto_strlcpy(m->u.session.session_class, "user", sizeof(m->u.session.session_class));
		proto_strlcpy(m->u.session.session_type, "x11", sizeof(m->u.session.session_type));
		proto_strlcpy(m->u.session.seat, "seat0", sizeof(m->u.session.seat));
		m->u.session.vtnr = PROTO_VTNR_MAX;
		break;
	case PROTO_TERMINATE:
		m->u.terminate.session_id = 0x8000000000000001ULL;
		break;
	case PROTO_ENV: {
		size_t used = 0;
		m->u.env.op = PROTO_ENV_SET;
		proto_strlcpy(m->u.env.user, "alice", sizeof(m->u.env.user));
		assert_int_equal(proto_env_append(&m->u.env, &used, "WAYLAND_DISPLAY=wayland-1"), 0);
		assert_int_equal(proto_env_append(&m->u.env, &used, "EMPTY="), 0);
		assert_int_equal(proto_env_append(&m->u.env, &used, "_X1=a=b c"), 0);
		break;
	}
	default: /* LIST_USERS, LIST_SESSIONS, END: no fields */
		break;
	}
}

static const uint16_t all_types[] = {
	PROTO_OPEN_SESSION, PROTO_OPEN_REPLY, PROTO_CLOSE_SESSION, PROTO_RESULT,
	PROTO_LIST_USERS, PROTO_LIST_SESSIONS, PROTO_STATUS, PROTO_USER_INFO,
	PROTO_SESSION_INFO, PROTO_END, PROTO_CONTROL, PROTO_TERMINATE, PROTO_ENV,
};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

static void fill(char *field, size_t size, char c)
{
	memset(field, c, size - 1);
	field[size - 1] = '\0';
}

/* Every string at the longest length its field allows. */
static void msg_longest(uint16_t type, struct proto_msg *m)
{
	msg_example(type, m);
	switch (type) {
	case PROTO_OPEN_SESSION:
		fill(m->u.open.user, sizeof(m->u.open.user), 'u');
		fill(m->u.open.service, sizeof(m->u.open.service), 's');
		fill(m->u.open.tty, sizeof(m->u.open.tty), 't');
		fill(m->u.open.rhost, sizeof(m->u.open.rhost), 'h');
		fill(m->u.open.rundir, sizeof(m->u.open.rundir), 'r');
		fill(m->u.open.session_class, sizeof(m->u.open.session_class), 'c');
		fill(m->u.open.session_type, sizeof(m->u.open.session_type), 't');
		fill(m->u.open.seat, sizeof(m->u.open.seat), 's');
		break;
	case PROTO_OPEN_REPLY:
		fill(m->u.open_reply.rundir, sizeof(m->u.open_reply.rundir), 'r');
		fill(m->u.open_reply.dbus_address, sizeof(m->u.open_reply.dbus_address), 'd');
		fill(m->u.open_reply.message, sizeof(m->u.open_reply.message), 'm');
		break;
	case PROTO_RESULT:
		fill(m->u.result.message, sizeof(m->u.result.message), 'm');
		break;
	case PROTO_STATUS:
		fill(m->u.status.user, sizeof(m->u.status.user), 'u');
		break;
	case PROTO_CONTROL:
		fill(m->u.control.user, sizeof(m->u.control.user), 'u');
		break;
	case PROTO_USER_INFO:
		fill(m->u.user.name, sizeof(m->u.user.name), 'n');
		fill(m->u.user.state, sizeof(m->u.user.state), 's');
		fill(m->u.user.backend, sizeof(m->u.user.backend), 'b');
		fill(m->u.user.last_failure, sizeof(m->u.user.last_failure), 'f');
		fill(m->u.user.rundir, sizeof(m->u.user.rundir), 'r');
		break;
	case PROTO_SESSION_INFO:
		fill(m->u.session.user, sizeof(m->u.session.user), 'u');
		fill(m->u.session.service, sizeof(m->u.session.service), 's');
		fill(m->u.session.tty, sizeof(m->u.session.tty), 't');
		fill(m->u.session.rhost, sizeof(m->u.session.rhost), 'h');
		fill(m->u.session.session_class, sizeof(m->u.session.session_class), 'c');
		fill(m->u.session.session_type, sizeof(m->u.session.session_type), 't');
		fill(m->u.session.seat, sizeof(m->u.session.seat), 's');
		break;
	case PROTO_ENV: {
		/* Four strings of 949 bytes fill vars exactly (and the packet nearly). */
		char var[950];
		size_t used = 0;
		memset(m->u.env.vars, 0, sizeof(m->u.env.vars));
		m->u.env.count = 0;
		fill(m->u.env.user, sizeof(m->u.env.user), 'u');
		memset(var, 'v', sizeof(var) - 1);
		var[sizeof(var) - 1] = '\0';
		var[1] = '=';
		for (int i = 0; i < 4; i++)
			assert_int_equal(proto_env_append(&m->u.env, &used, var), 0);
		assert_int_equal(used, sizeof(m->u.env.vars));
		assert_int_equal(proto_env_append(&m->u.env, &used, "A="), -1);
		break;
	}
	default:
		break;
	}
}

static void assert_roundtrip(const struct proto_msg *m)
{
	uint8_t buf[PROTO_MSG_MAX];
	ssize_t n = proto_encode(m, buf, sizeof(buf));
	assert_true(n >= 4);
	struct proto_msg out;
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(proto_decode(buf, (size_t)n, &out), 0);
	assert_memory_equal(m, &out, sizeof(out));

	/* Re-encoding the decoded message gives the same bytes. */
	uint8_t again[PROTO_MSG_MAX];
	assert_int_equal(proto_encode(&out, again, sizeof(again)), n);
	assert_memory_equal(buf, again, (size_t)n);
}

static void test_roundtrip_every_type(void **state)
{
	struct proto_msg m;
	for (size_t i = 0; i < N_TYPES; i++) {
		msg_example(all_types[i], &m);
		assert_roundtrip(&m);
	}
}

static void test_roundtrip_longest_strings(void **state)
{
	struct proto_msg m;
	for (size_t i = 0; i < N_TYPES; i++) {
		msg_longest(all_types[i], &m);
		assert_roundtrip(&m);
	}
}

static void test_roundtrip_empty_strings(void **state)
{
	struct proto_msg m;
	memset(&m, 0, sizeof(m));
	m.type = PROTO_OPEN_SESSION;
	assert_roundtrip(&m);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_USER_INFO;
	assert_roundtrip(&m);
}

static void test_roundtrip_high_bytes(void **state)
{
	/* Non-ASCII bytes (UTF-8 names) are not control characters. */
	struct proto_msg m;
	msg_example(PROTO_STATUS, &m);
	proto_strlcpy(m.u.status.user, "j\xc3\xb6rg\xff\x80", sizeof(m.u.status.user));
	assert_roundtrip(&m);
}

static void test_roundtrip_every_value(void **state)
{
	struct proto_msg m;
	for (uint32_t flags = 0; flags <= PROTO_OPEN_FLAGS_ALL; flags++) {
		msg_example(PROTO_OPEN_SESSION, &m);
		m.u.open.flags = flags;
		assert_roundtrip(&m);
		msg_example(PROTO_SESSION_INFO, &m);
		m.u.session.flags = flags;
		assert_roundtrip(&m);
	}
	for (uint32_t s = PROTO_OPEN_READY; s <= PROTO_OPEN_FAILED; s++) {
		msg_example(PROTO_OPEN_REPLY, &m);
		m.u.open_reply.status = s;
		assert_roundtrip(&m);
	}
	for (uint32_t op = 1; op <= PROTO_CTL_OP_MAX; op++) {
		msg_example(PROTO_CONTROL, &m);
		m.u.control.op = op;
		assert_roundtrip(&m);
	}
	for (uint32_t l = 0; l <= 1; l++) {
		msg_example(PROTO_USER_INFO, &m);
		m.u.user.linger = l;
		assert_roundtrip(&m);
	}
}

/* The encoder produces exactly the documented little-endian layout. */
static void test_encode_exact_bytes(void **state)
{
	struct proto_msg m;
	uint8_t buf[PROTO_MSG_MAX];

	memset(&m, 0, sizeof(m));
	m.type = PROTO_CLOSE_SESSION;
	m.u.close.session_id = 0x0807060504030201ULL;
	static const uint8_t close_bytes[] = {
		0x02, 0x00, 0x03, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	};
	assert_int_equal(proto_encode(&m, buf, sizeof(buf)), sizeof(close_bytes));
	assert_memory_equal(buf, close_bytes, sizeof(close_bytes));

	memset(&m, 0, sizeof(m));
	m.type = PROTO_RESULT;
	m.u.result.code = -2;
	proto_strlcpy(m.u.result.message, "ab", sizeof(m.u.result.message));
	static const uint8_t result_bytes[] = {
		0x02, 0x00, 0x04, 0x00, 0xfe, 0xff, 0xff, 0xff, 0x02, 0x00, 'a', 'b',
	};
	assert_int_equal(proto_encode(&m, buf, sizeof(buf)), sizeof(result_bytes));
	assert_memory_equal(buf, result_bytes, sizeof(result_bytes));

	memset(&m, 0, sizeof(m));
	m.type = PROTO_END;
	static const uint8_t end_bytes[] = { 0x02, 0x00, 0x0a, 0x00 };
	assert_int_equal(proto_encode(&m, buf, sizeof(buf)), sizeof(end_bytes));
	assert_memory_equal(buf, end_bytes, sizeof(end_bytes));

	/* A hand-built OPEN_SESSION matches the encoder's output byte for byte. */
	struct pkt p;
	build_open(&p, "carol", PROTO_OPEN_NORUNDIR);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_OPEN_SESSION;
	proto_strlcpy(m.u.open.user, "carol", sizeof(m.u.open.user));
	proto_strlcpy(m.u.open.service, "login", sizeof(m.u.open.service));
	proto_strlcpy(m.u.open.tty, "tty1", sizeof(m.u.open.tty));
	m.u.open.flags = PROTO_OPEN_NORUNDIR;
	proto_strlcpy(m.u.open.session_class, "user", sizeof(m.u.open.session_class));
	assert_int_equal(proto_encode(&m, buf, sizeof(buf)), p.n);
	assert_memory_equal(buf, p.b, p.n);
}

static void test_decode_hand_built(void **state)
{
	struct pkt p;
	struct proto_msg m;

	build_open(&p, "dave", PROTO_OPEN_REMOTE);
	assert_int_equal(proto_decode(p.b, p.n, &m), 0);
	assert_int_equal(m.type, PROTO_OPEN_SESSION);
	assert_string_equal(m.u.open.user, "dave");
	assert_string_equal(m.u.open.service, "login");
	assert_string_equal(m.u.open.tty, "tty1");
	assert_string_equal(m.u.open.rhost, "");
	assert_int_equal(m.u.open.flags, PROTO_OPEN_REMOTE);
	assert_string_equal(m.u.open.rundir, "");

	put_header(&p, PROTO_RESULT);
	put_u32(&p, 0xfffffff3u);
	put_str(&p, "denied");
	assert_int_equal(proto_decode(p.b, p.n, &m), 0);
	assert_int_equal(m.type, PROTO_RESULT);
	assert_int_equal(m.u.result.code, -13);
	assert_string_equal(m.u.result.message, "denied");

	put_header(&p, PROTO_SESSION_INFO);
	put_u64(&p, 0x1122334455667788ULL);
	put_u32(&p, 1001);
	put_str(&p, "erin");
	put_str(&p, "su");
	put_str(&p, "pts/3");
	put_str(&p, "");
	put_u32(&p, 0);
	put_u32(&p, 0x80000000u);
	put_u64(&p, 5);
	put_str(&p, "greeter");
	put_str(&p, "wayland");
	put_str(&p, "seat0");
	put_u32(&p, 1);
	assert_int_equal(proto_decode(p.b, p.n, &m), 0);
	assert_string_equal(m.u.session.session_class, "greeter");
	assert_int_equal(m.u.session.vtnr, 1);
	assert_true(m.u.session.id == 0x1122334455667788ULL);
	assert_int_equal(m.u.session.uid, 1001);
	assert_string_equal(m.u.session.tty, "pts/3");
	assert_int_equal(m.u.session.pid, -2147483647 - 1);
	assert_int_equal(m.u.session.since, 5);
}

static void test_reject_truncated(void **state)
{
	struct proto_msg m, out;
	uint8_t buf[PROTO_MSG_MAX];
	for (size_t i = 0; i < N_TYPES; i++) {
		msg_example(all_types[i], &m);
		ssize_t n = proto_encode(&m, buf, sizeof(buf));
		assert_true(n >= 4);
		for (size_t len = 0; len < (size_t)n; len++) {
			/* Copy so that ASan catches a read past the truncated end. */
			uint8_t *cut = test_malloc(len ? len : 1);
			memcpy(cut, buf, len);
			assert_int_equal(proto_decode(cut, len, &out), -1);
			test_free(cut);
		}
		assert_int_equal(proto_decode(buf, (size_t)n, &out), 0);
	}
}

/*
 * The same, with each truncated packet ending exactly at a page followed by
 * an inaccessible one: a decoder that reads even one byte past the end
 * crashes here, without ASan (its "pos != len" check at the end would hide
 * the overread from the result alone).
 */
static void test_reject_truncated_at_page_end(void **state)
{
	struct proto_msg m, out;
	uint8_t buf[PROTO_MSG_MAX];
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	assert_true(page >= PROTO_MSG_MAX);
	uint8_t *area = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		-1, 0);
	assert_true(area != MAP_FAILED);
	assert_int_equal(mprotect(area + page, page, PROT_NONE), 0);
	for (size_t i = 0; i < N_TYPES; i++) {
		msg_example(all_types[i], &m);
		ssize_t n = proto_encode(&m, buf, sizeof(buf));
		assert_true(n >= 4);
		for (size_t len = 0; len <= (size_t)n; len++) {
			uint8_t *at = area + page - len;
			memcpy(at, buf, len);
			assert_int_equal(proto_decode(at, len, &out), len == (size_t)n ? 0 : -1);
		}
	}
	munmap(area, 2 * page);
}

static void test_reject_trailing(void **state)
{
	struct proto_msg m, out;
	uint8_t buf[PROTO_MSG_MAX];
	for (size_t i = 0; i < N_TYPES; i++) {
		msg_example(all_types[i], &m);
		ssize_t n = proto_encode(&m, buf, sizeof(buf) - 8);
		assert_true(n >= 4);
		buf[n] = 0;
		assert_int_equal(proto_decode(buf, (size_t)n + 1, &out), -1);
		memset(buf + n, 0xff, 8);
		assert_int_equal(proto_decode(buf, (size_t)n + 8, &out), -1);
	}
}

static void test_reject_oversized(void **state)
{
	static uint8_t big[PROTO_MSG_MAX + 1];
	struct proto_msg out;
	struct pkt p;

	/* A STATUS whose string would make the packet exceed PROTO_MSG_MAX. */
	put_header(&p, PROTO_STATUS);
	memcpy(big, p.b, p.n);
	big[4] = 0xff;
	big[5] = 0xff;
	memset(big + 6, 'a', sizeof(big) - 6);
	assert_int_equal(proto_decode(big, sizeof(big), &out), -1);

	/* A valid packet followed by padding up to PROTO_MSG_MAX + 1. */
	memset(big, 0, sizeof(big));
	put_header(&p, PROTO_END);
	memcpy(big, p.b, p.n);
	assert_int_equal(proto_decode(big, 4, &out), 0);
	assert_int_equal(proto_decode(big, sizeof(big), &out), -1);
	assert_int_equal(proto_decode(big, SIZE_MAX, &out), -1);
}

static void test_reject_version(void **state)
{
	struct proto_msg out;
	const uint16_t versions[] = { 0, 1, 3, 0x0200, 0xffff };
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		struct pkt p = { .n = 0 };
		put_u16(&p, versions[i]);
		put_u16(&p, PROTO_END);
		assert_int_equal(proto_decode(p.b, p.n, &out), -1);
	}
	struct pkt p;
	put_header(&p, PROTO_END);
	assert_int_equal(proto_decode(p.b, p.n, &out), 0);
}

static void test_reject_unknown_type(void **state)
{
	struct proto_msg out;
	const uint16_t types[] = { 0, 14, 15, 0x0100, 0xffff };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct pkt p;
		put_header(&p, types[i]);
		assert_int_equal(proto_decode(p.b, p.n, &out), -1);
		/* Even with a plausible body. */
		put_u64(&p, 1);
		assert_int_equal(proto_decode(p.b, p.n, &out), -1);

		struct proto_msg m;
		memset(&m, 0, sizeof(m));
		m.type = types[i];
		uint8_t buf[PROTO_MSG_MAX];
		assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
	}
}

/* A STATUS packet whose user string is the given raw bytes. */
static int decode_status_bytes(const void *s, size_t len, struct proto_msg *out)
{
	struct pkt p;
	put_header(&p, PROTO_STATUS);
	put_bytes(&p, s, len);
	return proto_decode(p.b, p.n, out);
}

static void test_reject_bad_strings(void **state)
{
	struct proto_msg out;
	char s[PROTO_MSG_MAX];
	memset(s, 'a', sizeof(s));

	/* Length limits: size - 1 is the longest accepted. */
	assert_int_equal(decode_status_bytes(s, PROTO_NAME_SIZE - 1, &out), 0);
	assert_int_equal(strlen(out.u.status.user), PROTO_NAME_SIZE - 1);
	assert_int_equal(decode_status_bytes(s, PROTO_NAME_SIZE, &out), -1);
	assert_int_equal(decode_status_bytes(s, PROTO_NAME_SIZE + 1, &out), -1);

	/* Same for a PROTO_FIELD_SIZE field: SESSION_INFO.tty. */
	for (size_t len = PROTO_FIELD_SIZE - 1; len <= PROTO_FIELD_SIZE; len++) {
		struct pkt p;
		put_header(&p, PROTO_SESSION_INFO);
		put_u64(&p, 1);
		put_u32(&p, 0);
		put_str(&p, "u");
		put_str(&p, "s");
		put_bytes(&p, s, len);
		put_str(&p, "");
		put_u32(&p, 0);
		put_u32(&p, 1);
		put_u64(&p, 1);
		put_str(&p, "user");
		put_str(&p, "");
		put_str(&p, "");
		put_u32(&p, 0);
		assert_int_equal(proto_decode(p.b, p.n, &out),
			len < PROTO_FIELD_SIZE ? 0 : -1);
	}

	/* Same for a PROTO_PATH_SIZE field: OPEN_REPLY.rundir. */
	for (size_t len = PROTO_PATH_SIZE - 1; len <= PROTO_PATH_SIZE; len++) {
		struct pkt p;
		put_header(&p, PROTO_OPEN_REPLY);
		put_u32(&p, PROTO_OPEN_READY);
		put_u64(&p, 1);
		put_u32(&p, 0);
		put_bytes(&p, s, len);
		put_str(&p, "");
		put_str(&p, "");
		assert_int_equal(proto_decode(p.b, p.n, &out),
			len < PROTO_PATH_SIZE ? 0 : -1);
	}

	/* A length running past the end of the packet. */
	struct pkt p;
	put_header(&p, PROTO_STATUS);
	put_u16(&p, 10);
	memcpy(p.b + p.n, "abc", 3);
	p.n += 3;
	assert_int_equal(proto_decode(p.b, p.n, &out), -1);

	/* Embedded NUL and every control character, at start, middle and end. */
	const unsigned char bad[] = { 0x00, 0x01, '\t', '\n', '\r', 0x1b, 0x1f, 0x7f };
	for (size_t i = 0; i < sizeof(bad); i++) {
		for (size_t at = 0; at < 3; at++) {
			char str[3] = { 'x', 'y', 'z' };
			str[at] = (char)bad[i];
			assert_int_equal(decode_status_bytes(str, 3, &out), -1);
		}
	}
	for (unsigned c = 0; c < 0x20; c++) {
		char ch = (char)c;
		assert_int_equal(decode_status_bytes(&ch, 1, &out), -1);
	}
	/* The characters just around the forbidden ranges are fine. */
	assert_int_equal(decode_status_bytes(" ~\x80", 3, &out), 0);
	assert_string_equal(out.u.status.user, " ~\x80");
}

static void test_reject_bad_strings_every_field(void **state)
{
	/* Corrupt each string of each longest message in turn. msg_longest
	 * fills every string to its field's limit with one letter, so a string
	 * is a u16 length of 127, 255 or 1023 followed by that many copies of
	 * one letter; no run of numeric fields looks like that. */
	struct proto_msg m, out;
	uint8_t buf[PROTO_MSG_MAX];
	for (size_t i = 0; i < N_TYPES; i++) {
		msg_longest(all_types[i], &m);
		ssize_t n = proto_encode(&m, buf, sizeof(buf));
		assert_true(n > 0);
		size_t strings = 0;
		for (size_t pos = 6; pos < (size_t)n; pos++) {
			uint16_t len = (uint16_t)(buf[pos - 2] | (buf[pos - 1] << 8));
			if (len != PROTO_FIELD_SIZE - 1 && len != PROTO_NAME_SIZE - 1 &&
					len != PROTO_PATH_SIZE - 1 && len != PROTO_TOKEN_SIZE - 1)
				continue;
			if (pos + len > (size_t)n || buf[pos] < 'a' || buf[pos] > 'z')
				continue;
			size_t same = 1;
			while (same < len && buf[pos + same] == buf[pos])
				same++;
			if (same != len)
				continue;
			strings++;
			/* A control character or a NUL at start, middle or end. */
			const size_t at[] = { pos, pos + len / 2, pos + len - 1 };
			for (size_t k = 0; k < 3; k++) {
				uint8_t saved = buf[at[k]];
				buf[at[k]] = '\n';
				assert_int_equal(proto_decode(buf, (size_t)n, &out), -1);
				buf[at[k]] = 0;
				assert_int_equal(proto_decode(buf, (size_t)n, &out), -1);
				buf[at[k]] = saved;
			}
			/* One more than the field allows. */
			buf[pos - 2] = (uint8_t)(len + 1);
			buf[pos - 1] = (uint8_t)((len + 1) >> 8);
			assert_int_equal(proto_decode(buf, (size_t)n, &out), -1);
			buf[pos - 2] = (uint8_t)len;
			buf[pos - 1] = (uint8_t)(len >> 8);
			assert_int_equal(proto_decode(buf, (size_t)n, &out), 0);
			pos += len - 1;
		}
		const size_t expected[] = {
			[PROTO_OPEN_SESSION] = 8, [PROTO_OPEN_REPLY] = 3, [PROTO_RESULT] = 1,
			[PROTO_STATUS] = 1, [PROTO_CONTROL] = 1, [PROTO_USER_INFO] = 5,
			[PROTO_SESSION_INFO] = 7, [PROTO_CLOSE_SESSION] = 0,
			[PROTO_LIST_USERS] = 0, [PROTO_LIST_SESSIONS] = 0, [PROTO_END] = 0,
			[PROTO_TERMINATE] = 0, [PROTO_ENV] = 1,
		};
		assert_int_equal(strings, expected[all_types[i]]);
	}
}

static void test_reject_bad_flags(void **state)
{
	struct proto_msg out;
	struct pkt p;
	const uint32_t bad[] = { 0x4, 0x7, 0x100, 0x80000000u, 0xffffffffu };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		build_open(&p, "alice", bad[i]);
		assert_int_equal(proto_decode(p.b, p.n, &out), -1);

		struct proto_msg m;
		msg_example(PROTO_OPEN_SESSION, &m);
		m.u.open.flags = bad[i];
		uint8_t buf[PROTO_MSG_MAX];
		assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
		msg_example(PROTO_SESSION_INFO, &m);
		m.u.session.flags = bad[i];
		assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
	}
	build_open(&p, "alice", PROTO_OPEN_FLAGS_ALL);
	assert_int_equal(proto_decode(p.b, p.n, &out), 0);
	assert_int_equal(out.u.open.flags, PROTO_OPEN_FLAGS_ALL);
}

/* Decode an encoded example after overwriting the u32 at offset 4. */
static int decode_with_u32(uint16_t type, size_t offset, uint32_t v)
{
	struct proto_msg m, out;
	uint8_t buf[PROTO_MSG_MAX];
	msg_example(type, &m);
	ssize_t n = proto_encode(&m, buf, sizeof(buf));
	assert_true(n > 0);
	for (int i = 0; i < 4; i++)
		buf[offset + i] = (uint8_t)(v >> (8 * i));
	return proto_decode(buf, (size_t)n, &out);
}

static void test_reject_bad_enums(void **state)
{
	struct proto_msg m;
	uint8_t buf[PROTO_MSG_MAX];

	/* OPEN_REPLY.status is the first field. */
	assert_int_equal(decode_with_u32(PROTO_OPEN_REPLY, 4, PROTO_OPEN_FAILED), 0);
	assert_int_equal(decode_with_u32(PROTO_OPEN_REPLY, 4, 3), -1);
	assert_int_equal(decode_with_u32(PROTO_OPEN_REPLY, 4, 0xffffffffu), -1);
	msg_example(PROTO_OPEN_REPLY, &m);
	m.u.open_reply.status = 3;
	assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);

	/* CONTROL.op is the first field. */
	assert_int_equal(decode_with_u32(PROTO_CONTROL, 4, 1), 0);
	assert_int_equal(decode_with_u32(PROTO_CONTROL, 4, PROTO_CTL_OP_MAX), 0);
	assert_int_equal(decode_with_u32(PROTO_CONTROL, 4, 0), -1);
	assert_int_equal(decode_with_u32(PROTO_CONTROL, 4, PROTO_CTL_OP_MAX + 1), -1);
	assert_int_equal(decode_with_u32(PROTO_CONTROL, 4, 0x01000001u), -1);
	msg_example(PROTO_CONTROL, &m);
	m.u.control.op = 0;
	assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
	m.u.control.op = PROTO_CTL_OP_MAX + 1;
	assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);

	/* USER_INFO.linger is 0 or 1; it sits 8 bytes before the end. */
	msg_example(PROTO_USER_INFO, &m);
	ssize_t n = proto_encode(&m, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(decode_with_u32(PROTO_USER_INFO, (size_t)n - 8, 0), 0);
	assert_int_equal(decode_with_u32(PROTO_USER_INFO, (size_t)n - 8, 2), -1);
	m.u.user.linger = 2;
	assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
}

static void test_encode_rejects(void **state)
{
	struct proto_msg m;
	uint8_t buf[PROTO_MSG_MAX];

	/* A field with no NUL inside it. */
	msg_example(PROTO_STATUS, &m);
	memset(m.u.status.user, 'a', sizeof(m.u.status.user));
	assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);

	/* Control characters. */
	const char *bad[] = { "a\nb", "\t", "x\x7f", "\x1f" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg_example(PROTO_OPEN_SESSION, &m);
		proto_strlcpy(m.u.open.tty, bad[i], sizeof(m.u.open.tty));
		assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
		msg_example(PROTO_OPEN_REPLY, &m);
		proto_strlcpy(m.u.open_reply.message, bad[i], sizeof(m.u.open_reply.message));
		assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
	}

	/* Every capacity below the packet length fails; exactly it succeeds. */
	for (size_t i = 0; i < N_TYPES; i++) {
		msg_example(all_types[i], &m);
		ssize_t n = proto_encode(&m, buf, sizeof(buf));
		assert_true(n > 0);
		for (size_t cap = 0; cap < (size_t)n; cap++) {
			uint8_t *small = test_malloc(cap ? cap : 1);
			assert_int_equal(proto_encode(&m, small, cap), -1);
			test_free(small);
		}
		uint8_t *exact = test_malloc((size_t)n);
		assert_int_equal(proto_encode(&m, exact, (size_t)n), n);
		assert_memory_equal(exact, buf, (size_t)n);
		test_free(exact);
	}
}

/* Session context tokens and environment strings are checked both ways. */
static void test_reject_bad_context_and_env(void **state)
{
	struct proto_msg m, out;
	uint8_t buf[PROTO_MSG_MAX];
	static const char *const bad_tokens[] = { "a b", "x/y", "se.at", "ü" };

	for (size_t i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
		msg_example(PROTO_OPEN_SESSION, &m);
		proto_strlcpy(m.u.open.session_class, bad_tokens[i], sizeof(m.u.open.session_class));
		assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
		msg_example(PROTO_SESSION_INFO, &m);
		proto_strlcpy(m.u.session.seat, bad_tokens[i], sizeof(m.u.session.seat));
		assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
	}
	msg_example(PROTO_OPEN_SESSION, &m);
	m.u.open.vtnr = PROTO_VTNR_MAX + 1;
	assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
	/* SESSION_INFO always names a class. */
	msg_example(PROTO_SESSION_INFO, &m);
	m.u.session.session_class[0] = '\0';
	assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);

	/* The decoder refuses what the encoder refuses: patch a good packet. */
	msg_example(PROTO_OPEN_SESSION, &m);
	ssize_t n = proto_encode(&m, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n - 1] = 0xff; /* vtnr high byte: out of range */
	assert_int_equal(proto_decode(buf, (size_t)n, &out), -1);
	msg_example(PROTO_OPEN_SESSION, &m);
	n = proto_encode(&m, buf, sizeof(buf));
	uint8_t *seat = memmem(buf, (size_t)n, "seat0", 5);
	assert_non_null(seat);
	seat[4] = '/';
	assert_int_equal(proto_decode(buf, (size_t)n, &out), -1);

	static const struct { uint32_t op; const char *var; } bad_env[] = {
		{ PROTO_ENV_SET, "NOEQUALS" }, { PROTO_ENV_SET, "=value" },
		{ PROTO_ENV_SET, "1X=a" }, { PROTO_ENV_SET, "A-B=c" },
		{ PROTO_ENV_SET, "A=line\nbreak" }, { PROTO_ENV_UNSET, "A=b" },
		{ PROTO_ENV_UNSET, "A B" }, { PROTO_ENV_LIST, "NAME" }, { PROTO_ENV_SHOW, "A=b" },
	};
	for (size_t i = 0; i < sizeof(bad_env) / sizeof(bad_env[0]); i++) {
		size_t used = 0;
		memset(&m, 0, sizeof(m));
		m.type = PROTO_ENV;
		m.u.env.op = bad_env[i].op;
		assert_int_equal(proto_env_append(&m.u.env, &used, bad_env[i].var), 0);
		assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
	}
	/* One string longer than dinit's limit. */
	{
		char var[PROTO_ENV_VAR_MAX + 2];
		size_t used = 0;
		memset(var, 'x', sizeof(var) - 1);
		var[sizeof(var) - 1] = '\0';
		var[1] = '=';
		memset(&m, 0, sizeof(m));
		m.type = PROTO_ENV;
		m.u.env.op = PROTO_ENV_SET;
		assert_int_equal(proto_env_append(&m.u.env, &used, var), 0);
		assert_int_equal(proto_encode(&m, buf, sizeof(buf)), -1);
		var[sizeof(var) - 2] = '\0'; /* exactly PROTO_ENV_VAR_MAX */
		memset(&m, 0, sizeof(m));
		m.type = PROTO_ENV;
		m.u.env.op = PROTO_ENV_SET;
		used = 0;
		assert_int_equal(proto_env_append(&m.u.env, &used, var), 0);
		assert_roundtrip(&m);
	}
	/* A decoded UNSET with a '=' (patched in) is refused. */
	{
		size_t used = 0;
		memset(&m, 0, sizeof(m));
		m.type = PROTO_ENV;
		m.u.env.op = PROTO_ENV_UNSET;
		assert_int_equal(proto_env_append(&m.u.env, &used, "AB"), 0);
		n = proto_encode(&m, buf, sizeof(buf));
		assert_true(n > 0);
		buf[n - 1] = '=';
		assert_int_equal(proto_decode(buf, (size_t)n, &out), -1);
	}
}

static void test_longest_fits(void **state)
{
	/* The largest message of each type fits in one packet. */
	struct proto_msg m;
	uint8_t buf[PROTO_MSG_MAX];
	msg_longest(PROTO_USER_INFO, &m);
	ssize_t n = proto_encode(&m, buf, sizeof(buf));
	assert_int_equal(n, 4 + 4 + 4 + (2 + 255) + (2 + 127) + 4 + (2 + 1023) + 8 + 4 +
		(2 + 255) + (2 + 1023) + 4 + 4);
}

static void test_type_name(void **state)
{
	assert_string_equal(proto_type_name(PROTO_OPEN_SESSION), "open_session");
	assert_string_equal(proto_type_name(PROTO_OPEN_REPLY), "open_reply");
	assert_string_equal(proto_type_name(PROTO_CLOSE_SESSION), "close_session");
	assert_string_equal(proto_type_name(PROTO_RESULT), "result");
	assert_string_equal(proto_type_name(PROTO_LIST_USERS), "list_users");
	assert_string_equal(proto_type_name(PROTO_LIST_SESSIONS), "list_sessions");
	assert_string_equal(proto_type_name(PROTO_STATUS), "status");
	assert_string_equal(proto_type_name(PROTO_USER_INFO), "user_info");
	assert_string_equal(proto_type_name(PROTO_SESSION_INFO), "session_info");
	assert_string_equal(proto_type_name(PROTO_END), "end");
	assert_string_equal(proto_type_name(PROTO_CONTROL), "control");
	assert_string_equal(proto_type_name(0), "unknown");
	assert_string_equal(proto_type_name(PROTO_TERMINATE), "terminate");
	assert_string_equal(proto_type_name(PROTO_ENV), "env");
	assert_string_equal(proto_type_name(14), "unknown");
	assert_string_equal(proto_type_name(0xffffffffu), "unknown");
}

static void test_strlcpy(void **state)
{
	char dst[5];

	memset(dst, 'z', sizeof(dst));
	proto_strlcpy(dst, "abc", sizeof(dst));
	assert_string_equal(dst, "abc");

	proto_strlcpy(dst, "abcd", sizeof(dst));
	assert_string_equal(dst, "abcd");

	proto_strlcpy(dst, "abcdefgh", sizeof(dst));
	assert_string_equal(dst, "abcd");

	proto_strlcpy(dst, "", sizeof(dst));
	assert_string_equal(dst, "");

	proto_strlcpy(dst, "xyz", 1);
	assert_string_equal(dst, "");

	memset(dst, 'z', sizeof(dst));
	proto_strlcpy(dst, "xyz", 0);
	assert_int_equal(dst[0], 'z');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_type),
		cmocka_unit_test(test_roundtrip_longest_strings),
		cmocka_unit_test(test_roundtrip_empty_strings),
		cmocka_unit_test(test_roundtrip_high_bytes),
		cmocka_unit_test(test_roundtrip_every_value),
		cmocka_unit_test(test_encode_exact_bytes),
		cmocka_unit_test(test_decode_hand_built),
		cmocka_unit_test(test_reject_truncated),
		cmocka_unit_test(test_reject_truncated_at_page_end),
		cmocka_unit_test(test_reject_trailing),
		cmocka_unit_test(test_reject_oversized),
		cmocka_unit_test(test_reject_version),
		cmocka_unit_test(test_reject_unknown_type),
		cmocka_unit_test(test_reject_bad_strings),
		cmocka_unit_test(test_reject_bad_strings_every_field),
		cmocka_unit_test(test_reject_bad_flags),
		cmocka_unit_test(test_reject_bad_enums),
		cmocka_unit_test(test_encode_rejects),
		cmocka_unit_test(test_reject_bad_context_and_env),
		cmocka_unit_test(test_longest_fits),
		cmocka_unit_test(test_type_name),
		cmocka_unit_test(test_strlcpy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
