/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests for src/daemon/server.c: the lifetime of a client that waits for
 * a manager. server.c runs on the real poller and a real control socket (in
 * a temporary directory), linked against a fake user layer (one session
 * whose waiter the test releases the way user.c does) and, through --wrap,
 * getsockopt (SO_PEERCRED reports the uid the test chooses). The test is the
 * PAM module: it connects, sends requests and reads the replies while
 * turning the event loop. No root, nothing forked.
 */
#include <errno.h>
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

#include "poller.h"
#include "server.h"
#include "state.h"
#include "supervisor.h"
#include "user.h"
#include "userenv.h"

#define SESSION_ID 42

/* ---- fake user layer: one user, one session ---- */

static struct user alice;
static struct session sess;
static struct {
	enum session_outcome outcome; /* what the next session_open returns */
	bool open;                    /* sess exists */
	unsigned opens, closes, unwaits;
} fk;

enum session_outcome session_open(const struct proto_open_session *req, pid_t pid,
	struct session_waiter *w, struct session **out, char *err, size_t errlen)
{
	(void)req; (void)pid;
	fk.opens++;
	*out = NULL;
	if (fk.outcome == SESSION_REFUSED) {
		snprintf(err, errlen, "refused here");
		return fk.outcome;
	}
	if (fk.outcome == SESSION_UNTRACKED)
		return fk.outcome;
	fk.open = true;
	*out = &sess;
	if (fk.outcome == SESSION_FAILED)
		snprintf(err, errlen, "the service manager of alice failed: exit 1");
	if (fk.outcome == SESSION_WAITING) {
		sess.waiter = w;
		w->session = &sess;
		w->timeout_ms = 9000;
	}
	return fk.outcome;
}

void session_unwait(struct session_waiter *w)
{
	if (!w->session)
		return;
	fk.unwaits++;
	w->session->waiter = NULL;
	w->session = NULL;
}

/* What user.c does when the manager is ready, fails, is stopped, or the
 * wait expires. */
static void release(enum session_wait_result result, const char *why)
{
	struct session_waiter *w = sess.waiter;
	assert_non_null(w);
	w->session = NULL;
	sess.waiter = NULL;
	w->release(w, &sess, result, why);
}

void session_close(struct session *s, const char *why)
{
	(void)why;
	assert_ptr_equal(s, &sess);
	fk.closes++;
	if (sess.waiter)
		release(SESSION_WAIT_FAILED, "session closed while waiting");
	fk.open = false;
}

struct session *session_find(uint64_t id)
{
	return fk.open && id == sess.id ? &sess : NULL;
}

void session_fill_reply(const struct session *s, struct proto_open_reply *reply)
{
	reply->session_id = s->id;
	snprintf(reply->rundir, sizeof(reply->rundir), "/run/user/1000");
	snprintf(reply->dbus_address, sizeof(reply->dbus_address), "unix:path=/run/user/1000/bus");
}

void session_rewait(struct session *s, struct session_waiter *w)
{
	s->waiter = w;
	w->session = s;
}

struct user *user_find(uid_t uid) { return uid == alice.uid ? &alice : NULL; }
struct user *user_find_by_arg(const char *arg) { (void)arg; return NULL; }
void users_foreach(void (*fn)(struct user *u, void *data), void *data) { (void)fn; (void)data; }
void sessions_foreach(void (*fn)(struct session *s, void *data), void *data)
{
	(void)fn; (void)data;
}
void user_fill_info(const struct user *u, struct proto_user_info *info) { (void)u; (void)info; }
void session_fill_info(const struct session *s, struct proto_session_info *info)
{
	(void)s; (void)info;
}
int user_stop(struct user *u, char *err, size_t errlen) { (void)u; (void)err; (void)errlen; return 0; }
int user_restart(struct user *u, char *err, size_t errlen)
{
	(void)u; (void)err; (void)errlen;
	return 0;
}
bool user_arg_is(const char *arg, uid_t uid) { (void)arg; (void)uid; return false; }
void session_terminate(struct session *s, uid_t by) { (void)s; (void)by; }
int user_set_linger(const char *arg, bool on, char *err, size_t errlen)
{
	(void)arg; (void)on; (void)err; (void)errlen;
	return 0;
}
static bool owned; /* the peer is a manager's process */
bool supervisor_owns(pid_t pid) { (void)pid; return owned; }
int handover_add_client(struct handover *h, int fd, uint64_t session, bool reexec)
{
	(void)h; (void)fd; (void)session; (void)reexec;
	return -1;
}
int userenv_change(const struct account *u, const char *backend, bool running,
	const struct proto_env *req, userenv_done_fn done, void *data, struct userenv_job **job,
	char *err, size_t errlen)
{
	(void)u; (void)backend; (void)running; (void)req; (void)done; (void)data; (void)job;
	snprintf(err, errlen, "not here");
	return EPERM;
}
void userenv_cancel(struct userenv_job *job) { (void)job; }
void userenv_foreach(uid_t uid, void (*fn)(const char *var, void *data), void *data)
{
	(void)uid; (void)fn; (void)data;
}

/* ---- wrapped: the peer's uid ---- */

static uid_t peer_uid;
int __real_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int __wrap_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int __wrap_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	int r = __real_getsockopt(fd, level, name, val, len);
	if (r == 0 && level == SOL_SOCKET && name == SO_PEERCRED)
		((struct ucred *)val)->uid = peer_uid;
	return r;
}

/* ---- the event loop and a client ---- */

static struct config cfg;
static char dir[64];
static struct timer tick;
static void tick_fn(struct timer *t, void *data) { (void)t; (void)data; }

/* One turn of the daemon's loop, never blocking for more than a tick. */
static void turn(void)
{
	timer_arm(&tick, 2);
	assert_int_equal(poller_dispatch(), 0);
}

/* Turn the loop until cond holds (2 s at most). */
#define TURN_UNTIL(cond)                                                  \
	do {                                                              \
		uint64_t end_ = monotonic_ms() + 2000;                    \
		while (!(cond)) {                                         \
			assert_true(monotonic_ms() < end_);               \
			turn();                                           \
		}                                                         \
	} while (0)

static int connect_client(void)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", cfg.socket_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

static void send_msg(int fd, const struct proto_msg *m)
{
	unsigned char buf[PROTO_MSG_MAX];
	ssize_t n = proto_encode(m, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(send(fd, buf, (size_t)n, 0), n);
}

/* The next reply (true), or the end of the connection (false). */
static bool recv_msg(int fd, struct proto_msg *m)
{
	uint64_t end = monotonic_ms() + 2000;
	for (;;) {
		unsigned char buf[PROTO_MSG_MAX];
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			assert_int_equal(proto_decode(buf, (size_t)n, m), 0);
			return true;
		}
		if (n == 0)
			return false;
		assert_int_equal(errno, EAGAIN);
		assert_true(monotonic_ms() < end);
		turn();
	}
}

/* A login opens its session: the daemon's first reply. */
static int open_session(struct proto_msg *reply)
{
	int fd = connect_client();
	struct proto_msg m = {.type = PROTO_OPEN_SESSION};
	snprintf(m.u.open.user, sizeof(m.u.open.user), "alice");
	snprintf(m.u.open.service, sizeof(m.u.open.service), "login");
	send_msg(fd, &m);
	assert_true(recv_msg(fd, reply));
	assert_int_equal(reply->type, PROTO_OPEN_REPLY);
	return fd;
}

static int setup(void **state)
{
	(void)state;
	memset(&fk, 0, sizeof(fk));
	memset(&alice, 0, sizeof(alice));
	memset(&sess, 0, sizeof(sess));
	alice.uid = 1000;
	alice.acct.name = "alice";
	sess.id = SESSION_ID;
	sess.user = &alice;
	peer_uid = 0;
	owned = false;
	snprintf(dir, sizeof(dir), "/tmp/dus-test-server.XXXXXX");
	assert_non_null(mkdtemp(dir));
	config_defaults(&cfg);
	snprintf(cfg.socket_path, sizeof(cfg.socket_path), "%s/control.sock", dir);
	assert_int_equal(poller_init(), 0);
	timer_init(&tick, tick_fn, NULL);
	static const struct server_hooks hooks = {0};
	assert_int_equal(server_init(&cfg, &hooks, -1), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	timer_disarm(&tick);
	server_finish();
	poller_finish();
	rmdir(dir);
	return 0;
}

/* ---- tests ---- */

/* A waiting login is answered once its manager is ready, with the bus
 * address it was not given in WAIT. */
static void test_wait_then_ready(void **state)
{
	(void)state;
	fk.outcome = SESSION_WAITING;
	struct proto_msg m;
	int fd = open_session(&m);
	assert_int_equal(m.u.open_reply.status, PROTO_OPEN_WAIT);
	assert_int_equal(m.u.open_reply.timeout_ms, 9000);
	assert_int_equal(m.u.open_reply.session_id, SESSION_ID);
	assert_string_equal(m.u.open_reply.dbus_address, "");
	assert_non_null(sess.waiter);
	release(SESSION_WAIT_READY, "ready");
	assert_true(recv_msg(fd, &m));
	assert_int_equal(m.u.open_reply.status, PROTO_OPEN_READY);
	assert_string_equal(m.u.open_reply.dbus_address, "unix:path=/run/user/1000/bus");
	close(fd);
}

/* The login goes away while it waits: its waiter is detached, and the
 * manager's readiness later finds no one to answer. */
static void test_disconnect_while_waiting(void **state)
{
	(void)state;
	fk.outcome = SESSION_WAITING;
	struct proto_msg m;
	int fd = open_session(&m);
	assert_int_equal(m.u.open_reply.status, PROTO_OPEN_WAIT);
	close(fd);
	TURN_UNTIL(fk.unwaits == 1);
	assert_null(sess.waiter);
	/* A new login on the same session waits as the first did. */
	fd = open_session(&m);
	assert_int_equal(m.u.open_reply.status, PROTO_OPEN_WAIT);
	assert_int_equal(fk.unwaits, 1);
	release(SESSION_WAIT_READY, "ready");
	assert_true(recv_msg(fd, &m));
	assert_int_equal(m.u.open_reply.status, PROTO_OPEN_READY);
	close(fd);
}

/* The user is stopped (stop-user, or its manager failed) while a login
 * waits: the login hears why, then the connection ends when it closes. */
static void test_user_stopped_while_waiting(void **state)
{
	(void)state;
	fk.outcome = SESSION_WAITING;
	struct proto_msg m;
	int fd = open_session(&m);
	release(SESSION_WAIT_FAILED, "the manager was stopped");
	assert_true(recv_msg(fd, &m));
	assert_int_equal(m.u.open_reply.status, PROTO_OPEN_FAILED);
	assert_int_equal(m.u.open_reply.session_id, SESSION_ID); /* to be closed */
	assert_string_equal(m.u.open_reply.message, "the manager was stopped");
	assert_string_equal(m.u.open_reply.dbus_address, "");
	close(fd);
	turn();
	assert_int_equal(fk.unwaits, 0); /* nothing was attached any more */
}

/* The waiting connection itself closes its session: the wait is answered
 * from inside that request's handler, and the client, busy in it, is not
 * freed under it: both replies arrive, in order. */
static void test_close_own_session_while_waiting(void **state)
{
	(void)state;
	fk.outcome = SESSION_WAITING;
	struct proto_msg m;
	int fd = open_session(&m);
	struct proto_msg close_req = {.type = PROTO_CLOSE_SESSION};
	close_req.u.close.session_id = SESSION_ID;
	send_msg(fd, &close_req);
	assert_true(recv_msg(fd, &m));
	assert_int_equal(m.type, PROTO_OPEN_REPLY);
	assert_int_equal(m.u.open_reply.status, PROTO_OPEN_FAILED);
	assert_string_equal(m.u.open_reply.message, "session closed while waiting");
	assert_true(recv_msg(fd, &m));
	assert_int_equal(m.type, PROTO_RESULT);
	assert_int_equal(m.u.result.code, 0);
	assert_int_equal(fk.closes, 1);
	close(fd);
}

/* The wait expired (login_timeout and a grace): the connection is dropped
 * without an answer, the login having gone on long ago. */
static void test_wait_expired(void **state)
{
	(void)state;
	fk.outcome = SESSION_WAITING;
	struct proto_msg m;
	int fd = open_session(&m);
	release(SESSION_WAIT_EXPIRED, "timed out waiting for the service manager");
	assert_false(recv_msg(fd, &m));
	close(fd);
}

/* Every other outcome is answered at once; a failed manager's session is
 * tracked (its id sent, so that the module closes it). */
static void test_outcomes(void **state)
{
	(void)state;
	struct proto_msg m;
	fk.outcome = SESSION_READY;
	close(open_session(&m));
	assert_int_equal(m.u.open_reply.status, PROTO_OPEN_READY);
	assert_int_equal(m.u.open_reply.session_id, SESSION_ID);
	assert_string_equal(m.u.open_reply.dbus_address, "unix:path=/run/user/1000/bus");

	fk.outcome = SESSION_UNTRACKED;
	close(open_session(&m));
	assert_int_equal(m.u.open_reply.status, PROTO_OPEN_READY);
	assert_int_equal(m.u.open_reply.session_id, 0);

	fk.outcome = SESSION_FAILED;
	close(open_session(&m));
	assert_int_equal(m.u.open_reply.status, PROTO_OPEN_FAILED);
	assert_int_equal(m.u.open_reply.session_id, SESSION_ID);
	assert_string_equal(m.u.open_reply.message, "the service manager of alice failed: exit 1");
	assert_string_equal(m.u.open_reply.dbus_address, "");

	fk.outcome = SESSION_REFUSED;
	close(open_session(&m));
	assert_int_equal(m.u.open_reply.status, PROTO_OPEN_FAILED);
	assert_int_equal(m.u.open_reply.session_id, 0);
	assert_string_equal(m.u.open_reply.message, "refused here");
	assert_null(sess.waiter);
}

/* Only root opens sessions, and never a manager's own PAM session: each is
 * refused before the user layer hears of it, and a non-root peer's
 * connection ends. */
static void test_refused(void **state)
{
	(void)state;
	fk.outcome = SESSION_WAITING;
	struct proto_msg req = {.type = PROTO_OPEN_SESSION}, m;
	snprintf(req.u.open.user, sizeof(req.u.open.user), "alice");

	peer_uid = 1000;
	int fd = connect_client();
	send_msg(fd, &req);
	assert_true(recv_msg(fd, &m));
	assert_int_equal(m.type, PROTO_RESULT);
	assert_int_equal(m.u.result.code, EPERM);
	assert_false(recv_msg(fd, &m)); /* and dropped */
	close(fd);

	peer_uid = 0;
	owned = true;
	fd = connect_client();
	send_msg(fd, &req);
	assert_true(recv_msg(fd, &m));
	assert_int_equal(m.type, PROTO_RESULT);
	assert_int_equal(m.u.result.code, EPERM);
	assert_string_equal(m.u.result.message, "a manager's own PAM session is not a login");
	close(fd);
	assert_int_equal(fk.opens, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_wait_then_ready),
		T(test_disconnect_while_waiting),
		T(test_user_stopped_while_waiting),
		T(test_close_own_session_while_waiting),
		T(test_wait_expired),
		T(test_outcomes),
		T(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
