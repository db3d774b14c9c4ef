/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests for src/common/client.c: the control-socket client shared by
 * the PAM module and dinit-userservctl.
 *
 * Each test plays the daemon itself, single-threaded: a listening
 * SOCK_SEQPACKET socket in a fresh directory, accepted after client_open
 * (the connection waits in the backlog), and raw packets written to it
 * before client_recv reads them. Deadlines are asserted both ways: the
 * client gives up after its deadline, and well before a generous bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "proto.h"
#include "util.h"

/* Generous bound on how late a deadline may be noticed on a loaded machine. */
#define SLACK_MS 3000

struct daemon {
	char dir[64];
	char path[128];
	int listen_fd;
	int conn_fd; /* the accepted connection, or -1 */
};

static int daemon_setup(void **state)
{
	struct daemon *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	strcpy(d->dir, "/tmp/dus-test-client-XXXXXX");
	assert_non_null(mkdtemp(d->dir));
	snprintf(d->path, sizeof(d->path), "%s/control.sock", d->dir);
	d->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(d->listen_fd >= 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	strcpy(addr.sun_path, d->path);
	assert_int_equal(bind(d->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(d->listen_fd, 4), 0);
	d->conn_fd = -1;
	*state = d;
	return 0;
}

static int daemon_teardown(void **state)
{
	struct daemon *d = *state;
	if (d->conn_fd >= 0)
		close(d->conn_fd);
	close(d->listen_fd);
	unlink(d->path);
	rmdir(d->dir);
	free(d);
	return 0;
}

static void daemon_accept(struct daemon *d)
{
	d->conn_fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(d->conn_fd >= 0);
}

static void daemon_send(struct daemon *d, const void *buf, size_t len)
{
	assert_int_equal(send(d->conn_fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void daemon_send_msg(struct daemon *d, const struct proto_msg *msg)
{
	unsigned char buf[PROTO_MSG_MAX];
	ssize_t len = proto_encode(msg, buf, sizeof(buf));
	assert_true(len > 0);
	daemon_send(d, buf, (size_t)len);
}

static int64_t now(void)
{
	return (int64_t)monotonic_ms();
}

/* Open a connection to d, the request sent and accepted. */
static void open_and_request(struct daemon *d, struct client *c, int64_t deadline)
{
	assert_int_equal(client_open(c, d->path, deadline), CLIENT_OK);
	daemon_accept(d);
	struct proto_msg req = {.type = PROTO_LIST_USERS};
	assert_int_equal(client_send(c, &req), CLIENT_OK);
	unsigned char buf[PROTO_MSG_MAX];
	assert_int_equal(recv(d->conn_fd, buf, sizeof(buf), 0), 4);
}

/* The lowest free fd: an fd the client leaked would hold it. */
static int lowest_free_fd(void)
{
	int fd = dup(0);
	assert_true(fd >= 0);
	close(fd);
	return fd;
}

static void test_exchange(void **state)
{
	struct daemon *d = *state;
	struct client c;
	open_and_request(d, &c, now() + 5000);

	int flags = fcntl(c.fd, F_GETFD);
	assert_true(flags >= 0 && (flags & FD_CLOEXEC));

	struct proto_msg reply = {.type = PROTO_RESULT};
	reply.u.result.code = 13;
	strcpy(reply.u.result.message, "no");
	daemon_send_msg(d, &reply);
	struct proto_msg got;
	assert_int_equal(client_recv(&c, &got), CLIENT_OK);
	assert_int_equal(got.type, PROTO_RESULT);
	assert_int_equal(got.u.result.code, 13);
	assert_string_equal(got.u.result.message, "no");
	client_close(&c);
	assert_int_equal(c.fd, -1);
	client_close(&c); /* again: harmless */
}

static void test_absent(void **state)
{
	struct daemon *d = *state;
	struct client c;
	int free_fd = lowest_free_fd();
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/missing.sock", d->dir);

	assert_int_equal(client_open(&c, missing, now() + 5000), CLIENT_ABSENT);
	assert_int_equal(c.fd, -1);
	assert_int_equal(c.err, ENOENT);
	assert_non_null(strstr(c.message, "dinit-userservd not running"));
	assert_int_equal(lowest_free_fd(), free_fd);

	/* A socket file nobody listens on: connection refused. */
	close(d->listen_fd);
	d->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(d->listen_fd >= 0);
	free_fd = lowest_free_fd();
	assert_int_equal(client_open(&c, d->path, now() + 5000), CLIENT_ABSENT);
	assert_int_equal(c.fd, -1);
	assert_int_equal(c.err, ECONNREFUSED);
	assert_int_equal(lowest_free_fd(), free_fd);
}

static void test_bad_path(void **state)
{
	(void)state;
	struct client c;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(client_open(&c, path, now() + 5000), CLIENT_BADPATH);
	assert_int_equal(c.fd, -1);
	/* One byte shorter fits (and is simply absent). */
	path[sizeof(path) - 2] = '\0';
	assert_int_equal(client_open(&c, path, now() + 5000), CLIENT_ABSENT);
}

static void test_open_past_deadline(void **state)
{
	struct daemon *d = *state;
	struct client c;
	int free_fd = lowest_free_fd();
	assert_int_equal(client_open(&c, d->path, now() - 1), CLIENT_TIMEOUT);
	assert_int_equal(c.fd, -1);
	assert_int_equal(lowest_free_fd(), free_fd);
}

static void test_recv_deadline(void **state)
{
	struct daemon *d = *state;
	struct client c;
	open_and_request(d, &c, now() + 5000);

	/* No reply: the client gives up at its deadline, not before, not much after. */
	int64_t start = now();
	c.deadline_ms = start + 200;
	struct proto_msg got;
	assert_int_equal(client_recv(&c, &got), CLIENT_TIMEOUT);
	int64_t waited = now() - start;
	assert_true(waited >= 199);
	assert_true(waited < 200 + SLACK_MS);
	client_close(&c);
}

static void test_recv_queued_past_deadline(void **state)
{
	struct daemon *d = *state;
	struct client c;
	open_and_request(d, &c, now() + 5000);

	/* A reply already queued is read even once the deadline has passed. */
	struct proto_msg reply = {.type = PROTO_END};
	daemon_send_msg(d, &reply);
	c.deadline_ms = now() - 1000;
	struct proto_msg got;
	assert_int_equal(client_recv(&c, &got), CLIENT_OK);
	assert_int_equal(got.type, PROTO_END);
	/* and nothing more comes: a timeout at once */
	assert_int_equal(client_recv(&c, &got), CLIENT_TIMEOUT);
	client_close(&c);
}

static void test_send_deadline(void **state)
{
	struct daemon *d = *state;
	struct client c;
	open_and_request(d, &c, now() + 5000);

	/* The daemon reads nothing more: sending blocks once its queue is full,
	 * and must give up at the deadline (SO_SNDTIMEO set to the time left). */
	int64_t start = now();
	c.deadline_ms = start + 300;
	struct proto_msg req = {.type = PROTO_STATUS};
	memset(req.u.status.user, 'u', PROTO_NAME_SIZE - 1);
	enum client_status st = CLIENT_OK;
	for (int i = 0; i < 100000 && st == CLIENT_OK; i++)
		st = client_send(&c, &req);
	assert_int_equal(st, CLIENT_TIMEOUT);
	int64_t waited = now() - start;
	assert_true(waited >= 299);
	assert_true(waited < 300 + SLACK_MS);
	client_close(&c);
}

static void test_closed(void **state)
{
	struct daemon *d = *state;
	struct client c;
	open_and_request(d, &c, now() + 5000);
	close(d->conn_fd);
	d->conn_fd = -1;
	struct proto_msg got;
	assert_int_equal(client_recv(&c, &got), CLIENT_CLOSED);
	assert_string_equal(c.message, "dinit-userservd closed the connection");
	client_close(&c);
}

static void test_short_reply(void **state)
{
	struct daemon *d = *state;
	struct client c;
	open_and_request(d, &c, now() + 5000);
	const unsigned char header_cut[] = {PROTO_VERSION, 0, PROTO_RESULT};
	daemon_send(d, header_cut, sizeof(header_cut));
	struct proto_msg got;
	assert_int_equal(client_recv(&c, &got), CLIENT_MALFORMED);
	assert_int_equal(c.len, 3);
	assert_string_equal(c.message, "invalid message from dinit-userservd (3 bytes)");

	/* A RESULT cut inside its message field. */
	unsigned char buf[PROTO_MSG_MAX];
	struct proto_msg reply = {.type = PROTO_RESULT};
	strcpy(reply.u.result.message, "permission denied");
	ssize_t len = proto_encode(&reply, buf, sizeof(buf));
	assert_true(len > 5);
	daemon_send(d, buf, (size_t)len - 5);
	assert_int_equal(client_recv(&c, &got), CLIENT_MALFORMED);
	assert_int_equal(c.len, len - 5);
	client_close(&c);
}

static void test_garbled_reply(void **state)
{
	struct daemon *d = *state;
	struct client c;
	open_and_request(d, &c, now() + 5000);
	struct proto_msg got;

	/* An unknown type. */
	const unsigned char unknown[] = {PROTO_VERSION, 0, 0xee, 0xee};
	daemon_send(d, unknown, sizeof(unknown));
	assert_int_equal(client_recv(&c, &got), CLIENT_MALFORMED);

	/* Trailing bytes after a valid END. */
	const unsigned char trailing[] = {PROTO_VERSION, 0, PROTO_END, 0, 'x'};
	daemon_send(d, trailing, sizeof(trailing));
	assert_int_equal(client_recv(&c, &got), CLIENT_MALFORMED);

	/* Oversize: longer than any valid packet, told by its real length
	 * before anything in it is looked at (here: a wrong version too). */
	static unsigned char big[PROTO_MSG_MAX + 100];
	big[0] = PROTO_VERSION + 1;
	big[2] = PROTO_END;
	daemon_send(d, big, sizeof(big));
	assert_int_equal(client_recv(&c, &got), CLIENT_MALFORMED);
	assert_int_equal(c.len, (ssize_t)sizeof(big));

	/* Still in step: the next valid packet is read. */
	struct proto_msg reply = {.type = PROTO_END};
	daemon_send_msg(d, &reply);
	assert_int_equal(client_recv(&c, &got), CLIENT_OK);
	assert_int_equal(got.type, PROTO_END);
	client_close(&c);
}

static void test_version_mismatch(void **state)
{
	struct daemon *d = *state;
	struct client c;
	open_and_request(d, &c, now() + 5000);
	unsigned char buf[PROTO_MSG_MAX];
	struct proto_msg reply = {.type = PROTO_END};
	ssize_t len = proto_encode(&reply, buf, sizeof(buf));
	assert_int_equal(len, 4);
	buf[0] = PROTO_VERSION + 1;
	daemon_send(d, buf, (size_t)len);
	struct proto_msg got;
	assert_int_equal(client_recv(&c, &got), CLIENT_VERSION);
	assert_int_equal(c.version, PROTO_VERSION + 1);
	/* In the PAM module's words, as before the client was shared. */
	assert_string_equal(c.message, "invalid message from dinit-userservd (4 bytes)");
	client_close(&c);
}

static void test_encode_refused(void **state)
{
	struct daemon *d = *state;
	struct client c;
	assert_int_equal(client_open(&c, d->path, now() + 5000), CLIENT_OK);
	struct proto_msg req = {.type = PROTO_STATUS};
	strcpy(req.u.status.user, "bad\nname");
	assert_int_equal(client_send(&c, &req), CLIENT_ENCODE);
	assert_string_equal(c.message, "cannot encode status request");
	client_close(&c);
}

static void test_util(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 256; c++)
		assert_int_equal(char_is_control((unsigned char)c), c < 0x20 || c == 0x7f);
	assert_false(str_has_control(""));
	assert_false(str_has_control("alice \xc3\xa9~"));
	assert_true(str_has_control("a\tb"));
	assert_true(str_has_control("ab\x7f"));
	uint64_t a = monotonic_ms();
	uint64_t b = monotonic_ms();
	assert_true(a > 0 && b >= a);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, daemon_setup, daemon_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_exchange),
		T(test_absent),
		T(test_bad_path),
		T(test_open_past_deadline),
		T(test_recv_deadline),
		T(test_recv_queued_past_deadline),
		T(test_send_deadline),
		T(test_closed),
		T(test_short_reply),
		T(test_garbled_reply),
		T(test_version_mismatch),
		T(test_encode_refused),
		T(test_util),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
