/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests for src/daemon/user.c: sessions, the stop delay and linger,
 * waiting logins, and when a user is released. user.c is linked against a
 * fake supervisor (a manager whose state the test drives, reporting through
 * the struct manager_events user.c registers), fake linger marks, state
 * files, runtime dirs and poller, and, through --wrap, getpwnam_r/getpwuid_r
 * (one user, alice) and pidfd_open (an eventfd stands for a login's pidfd:
 * readable once the login "exits").
 * No root, nothing forked.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "linger.h"
#include "poller.h"
#include "proc.h"
#include "rundir.h"
#include "rundir_cleanup.h"
#include "state.h"
#include "supervisor.h"
#include "user.h"
#include "userenv.h"

#define ALICE 1000

/* ---- fake supervisor ---- */

static struct {
	enum manager_state start_to; /* where manager_start takes a stopped manager */
	unsigned starts, stops;
} sup;

void manager_init(struct manager *mgr, const struct account *acct,
	const struct manager_events *ev, void *owner)
{
	memset(mgr, 0, sizeof(*mgr));
	mgr->state = MANAGER_STOPPED;
	mgr->acct = acct;
	mgr->ev = ev;
	mgr->owner = owner;
}
void manager_start(struct manager *mgr)
{
	sup.starts++;
	if (mgr->state == MANAGER_STOPPED || mgr->state == MANAGER_FAILED) {
		mgr->state = sup.start_to;
		if (mgr->state == MANAGER_READY)
			mgr->ev->ready(mgr->owner);
	}
}
void manager_stop(struct manager *mgr)
{
	sup.stops++;
	if (mgr->state == MANAGER_STOPPING)
		return;
	if (mgr->state == MANAGER_STARTING || mgr->state == MANAGER_READY) {
		mgr->state = MANAGER_STOPPING;
		mgr->ev->abandoned(mgr->owner, "the manager is being stopped");
		return;
	}
	mgr->state = MANAGER_STOPPED;
	mgr->ev->stopped(mgr->owner);
}
void manager_adopt(struct manager *mgr, struct manager_record *rec) { (void)mgr; (void)rec; }
void manager_handover(struct manager *mgr, struct handover *h) { (void)mgr; (void)h; }
const char *manager_state_name(enum manager_state state) { (void)state; return "?"; }

/* The stopping manager exits. */
static void manager_stopped(struct manager *mgr)
{
	assert_int_equal(mgr->state, MANAGER_STOPPING);
	mgr->state = MANAGER_STOPPED;
	mgr->ev->stopped(mgr->owner);
}

/* ---- fake linger, rundir, state, userenv ---- */

static bool marked;
void linger_init(const struct config *cfg) { (void)cfg; }
bool linger_marked(const char *name) { (void)name; return marked; }
int linger_set(const char *name, bool on, char *err, size_t errlen)
{
	(void)name; (void)err; (void)errlen;
	marked = on;
	return 0;
}
void linger_foreach(void (*fn)(const char *name, void *data), void *data)
{
	if (marked)
		fn("alice", data);
}
int rundir_expand(const char *tmpl, uid_t uid, gid_t gid, const char *name, char *out,
	size_t len)
{
	(void)tmpl; (void)uid; (void)gid; (void)name; (void)out; (void)len;
	return -1;
}
int rundir_create(const char *path, uid_t uid, gid_t gid, unsigned size_mib, char *err,
	size_t errlen)
{
	(void)path; (void)uid; (void)gid; (void)size_mib;
	snprintf(err, errlen, "no runtime dirs here");
	return -1;
}
void rundir_cleanup_init(const struct config *cfg, rundir_cleanup_done_fn done)
{
	(void)cfg; (void)done;
}
int rundir_cleanup_start(const char *path, uid_t uid) { (void)path; (void)uid; return 0; }
bool rundir_cleanup_busy(const char *path) { (void)path; return false; }
static struct {
	unsigned saves, drops;
} urec;
int state_save_user(const struct state_user *su)
{
	assert_int_equal(su->uid, ALICE);
	urec.saves++;
	return 0;
}
void state_drop_user(uid_t uid)
{
	assert_int_equal(uid, ALICE);
	urec.drops++;
}
static struct {
	unsigned saves, drops;
	struct state_session saved; /* the last one */
	uint64_t dropped;
} rec;
int state_save_session(const struct state_session *ss)
{
	rec.saves++;
	rec.saved = *ss;
	return 0;
}
void state_drop_session(uint64_t id)
{
	rec.drops++;
	rec.dropped = id;
}
void state_foreach_user(void (*fn)(const struct state_user *su, void *data), void *data)
{
	(void)fn; (void)data;
}
void state_foreach_session(void (*fn)(const struct state_session *ss, void *data), void *data)
{
	(void)fn; (void)data;
}
int handover_take_ready(struct handover *h, uid_t uid, int *fd, int *keep_fd)
{
	(void)h; (void)uid; (void)fd; (void)keep_fd;
	return -1;
}
static unsigned env_forgotten;
void userenv_forget(uid_t uid) { (void)uid; env_forgotten++; }
void userenv_finish(void) {}
void userenv_restore(uid_t uid) { (void)uid; }

/* ---- fake poller: the logins' pidfds and the stop delay timer ---- */

struct poller_fd {
	int fd;
	poller_fd_fn fn;
	void *data;
	bool live;
};
static struct poller_fd srcs[16];

struct poller_fd *poller_add_fd(int fd, uint32_t events, poller_fd_fn fn, void *data)
{
	(void)events;
	for (size_t i = 0; i < 16; i++)
		if (!srcs[i].live) {
			srcs[i] = (struct poller_fd){fd, fn, data, true};
			return &srcs[i];
		}
	return NULL;
}
void poller_remove_fd(struct poller_fd *src) { src->live = false; }
void timer_init(struct timer *t, timer_fn fn, void *data)
{
	t->fn = fn;
	t->data = data;
	t->heap_index = SIZE_MAX;
}
int timer_arm(struct timer *t, uint64_t delay_ms)
{
	t->deadline = delay_ms; /* relative: what the test checks */
	t->heap_index = 0;
	return 0;
}
void timer_disarm(struct timer *t) { t->heap_index = SIZE_MAX; }
bool timer_armed(const struct timer *t) { return t->heap_index != SIZE_MAX; }

static void fire(struct timer *t)
{
	assert_true(timer_armed(t));
	t->heap_index = SIZE_MAX;
	t->fn(t, t->data);
}

/* The login process of s exits: its pidfd turns readable (and the poller
 * would report it next). */
static struct poller_fd *login_exits(struct session *s)
{
	for (size_t i = 0; i < 16; i++)
		if (srcs[i].live && srcs[i].data == s->login) {
			uint64_t one = 1;
			assert_int_equal(write(srcs[i].fd, &one, sizeof(one)), sizeof(one));
			return &srcs[i];
		}
	fail_msg("no watched login");
	return NULL;
}

/* The poller reports it. */
static void dispatch(struct poller_fd *src)
{
	assert_true(src->live);
	src->fn(src->fd, 1, src->data);
}

static void login_dies(struct session *s)
{
	dispatch(login_exits(s));
}

/* ---- wrapped ---- */

static struct passwd alice = {
	.pw_name = "alice", .pw_uid = ALICE, .pw_gid = ALICE, .pw_dir = "/home/alice",
	.pw_shell = "/bin/sh", .pw_passwd = "x", .pw_gecos = "",
};
static struct passwd root = {
	.pw_name = "root", .pw_uid = 0, .pw_gid = 0, .pw_dir = "/root",
	.pw_shell = "/bin/sh", .pw_passwd = "x", .pw_gecos = "",
};

int __wrap_getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
	struct passwd **out);
int __wrap_getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
	struct passwd **out)
{
	(void)buf; (void)len;
	*out = NULL;
	if (strcmp(name, "alice") && strcmp(name, "root"))
		return 0;
	*pw = strcmp(name, "root") ? alice : root;
	*out = pw;
	return 0;
}
int __wrap_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len,
	struct passwd **out);
int __wrap_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len,
	struct passwd **out)
{
	(void)buf; (void)len;
	*out = NULL;
	if (uid != ALICE)
		return 0;
	*pw = alice;
	*out = pw;
	return 0;
}
int __wrap_pidfd_open(pid_t pid, unsigned flags);
static unsigned pidfds_opened;
int __wrap_pidfd_open(pid_t pid, unsigned flags)
{
	(void)pid; (void)flags;
	pidfds_opened++;
	return eventfd(0, EFD_CLOEXEC);
}

/* ---- helpers ---- */

static struct config cfg;

static struct {
	unsigned calls;
	enum session_wait_result result;
	char why[256];
} answer;

static void waiter_release(struct session_waiter *w, struct session *s,
	enum session_wait_result result, const char *why)
{
	(void)s;
	assert_null(w->session); /* detached first */
	assert_false(timer_armed(&w->expiry));
	answer.calls++;
	answer.result = result;
	snprintf(answer.why, sizeof(answer.why), "%s", why);
}

/* One waiter per login, as the server embeds one in each client. */
static struct session_waiter waiters[8];
static unsigned nwaiters;
static char open_err[256];

static struct session *login_as(const char *name, enum session_outcome expect,
	struct session_waiter **wp)
{
	struct proto_open_session req = {0};
	snprintf(req.user, sizeof(req.user), "%s", name);
	snprintf(req.service, sizeof(req.service), "login");
	assert_true(nwaiters < 8);
	struct session_waiter *w = &waiters[nwaiters++];
	w->release = waiter_release;
	struct session *s = NULL;
	open_err[0] = '\0';
	assert_int_equal(session_open(&req, getpid(), w, &s, open_err, sizeof(open_err)), expect);
	/* w is attached exactly when the login waits. */
	assert_ptr_equal(w->session, expect == SESSION_WAITING ? s : NULL);
	if (wp)
		*wp = w;
	return s;
}

static struct session *login(enum session_outcome expect)
{
	struct session *s = login_as("alice", expect, NULL);
	assert_non_null(s);
	return s;
}

static int setup(void **state)
{
	(void)state;
	memset(&sup, 0, sizeof(sup));
	memset(&answer, 0, sizeof(answer));
	memset(srcs, 0, sizeof(srcs));
	memset(waiters, 0, sizeof(waiters));
	nwaiters = 0;
	pidfds_opened = 0;
	memset(&rec, 0, sizeof(rec));
	memset(&urec, 0, sizeof(urec));
	marked = false;
	env_forgotten = 0;
	sup.start_to = MANAGER_READY;
	config_defaults(&cfg);
	cfg.manage_rundir = CONFIG_RUNDIR_NO;
	cfg.linger = CONFIG_LINGER_NO;
	cfg.stop_delay = 10;
	assert_int_equal(users_init(&cfg), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	users_finish();
	return 0;
}

/* ---- tests ---- */

/* The last session ends: the manager stops after stop_delay, not before;
 * then the user is released (freed only after the dispatch). */
static void test_stop_delay(void **state)
{
	(void)state;
	struct session *s = login(SESSION_READY);
	struct user *u = user_find(ALICE);
	assert_non_null(u);
	assert_int_equal(u->mgr.state, MANAGER_READY);
	session_close(s, "logout");
	assert_int_equal(sup.stops, 0);
	assert_true(timer_armed(&u->stop_delay));
	assert_int_equal(u->stop_delay.deadline, cfg.stop_delay * 1000);
	fire(&u->stop_delay);
	assert_int_equal(sup.stops, 1);
	assert_int_equal(u->mgr.state, MANAGER_STOPPING);
	assert_ptr_equal(user_find(ALICE), u); /* kept while its manager stops */
	manager_stopped(&u->mgr);
	assert_null(user_find(ALICE)); /* released at once ... */
	assert_int_equal(u->uid, ALICE); /* ... but still readable until collected */
	assert_int_equal(env_forgotten, 2); /* at the stop, and with the user */
	users_collect();
}

/* A login within the stop delay keeps the manager running. */
static void test_login_within_stop_delay(void **state)
{
	(void)state;
	session_close(login(SESSION_READY), "logout");
	struct user *u = user_find(ALICE);
	assert_true(timer_armed(&u->stop_delay));
	struct session *s = login(SESSION_READY);
	assert_false(timer_armed(&u->stop_delay));
	assert_int_equal(sup.stops, 0);
	assert_int_equal(u->nsessions, 1);
	session_close(s, "logout");
}

/* stop_delay = 0: stopped as the last session ends. */
static void test_no_stop_delay(void **state)
{
	(void)state;
	cfg.stop_delay = 0;
	session_close(login(SESSION_READY), "logout");
	struct user *u = user_find(ALICE);
	assert_int_equal(sup.stops, 1);
	assert_false(timer_armed(&u->stop_delay));
	manager_stopped(&u->mgr);
	assert_null(user_find(ALICE));
}

/* linger = yes, or maybe with a mark: the manager outlives the sessions. */
static void test_linger(void **state)
{
	(void)state;
	cfg.linger = CONFIG_LINGER_YES;
	session_close(login(SESSION_READY), "logout");
	struct user *u = user_find(ALICE);
	assert_non_null(u);
	assert_false(timer_armed(&u->stop_delay));
	assert_int_equal(sup.stops, 0);

	cfg.linger = CONFIG_LINGER_MAYBE;
	marked = true;
	u->linger = true;
	session_close(login(SESSION_READY), "logout");
	assert_false(timer_armed(&u->stop_delay));
	assert_int_equal(sup.stops, 0);

	/* Unmarked with no session left: stopped at once, then released. */
	char err[128];
	assert_int_equal(user_set_linger("alice", false, err, sizeof(err)), 0);
	assert_string_equal(err, "alice no longer lingers");
	assert_int_equal(sup.stops, 1);
	manager_stopped(&u->mgr);
	assert_null(user_find(ALICE));
}

/* A session whose login process dies is closed like a logout. */
static void test_login_dies(void **state)
{
	(void)state;
	struct session *s = login(SESSION_READY);
	uint64_t id = s->id;
	login_dies(s);
	assert_null(session_find(id));
	struct user *u = user_find(ALICE);
	assert_int_equal(u->nsessions, 0);
	assert_true(timer_armed(&u->stop_delay));
}

/* A process that opens several sessions is watched once, and its exit ends
 * every one of them. */
static void test_one_login_many_sessions(void **state)
{
	(void)state;
	struct session *a = login(SESSION_READY), *b = login(SESSION_READY);
	uint64_t ida = a->id, idb = b->id;
	assert_ptr_equal(a->login, b->login);
	assert_int_equal(pidfds_opened, 1);
	login_dies(a);
	assert_null(session_find(ida));
	assert_null(session_find(idb));
	assert_int_equal(user_find(ALICE)->nsessions, 0);
	/* The next session from the same pid is watched anew. */
	login(SESSION_READY);
	assert_int_equal(pidfds_opened, 2);
}

/* A login process exits and its pid is reused before the exit is handled:
 * the new process's session gets a watch of its own, and the old exit,
 * handled later, ends only the old sessions. */
static void test_login_pid_reused(void **state)
{
	(void)state;
	struct session *old = login(SESSION_READY);
	uint64_t idold = old->id;
	struct poller_fd *exit_old = login_exits(old);
	struct session *cur = login(SESSION_READY);
	uint64_t idcur = cur->id;
	assert_int_equal(pidfds_opened, 2);
	assert_ptr_not_equal(cur->login, old->login);
	dispatch(exit_old);
	assert_null(session_find(idold));
	assert_ptr_equal(session_find(idcur), cur);
	login_dies(cur);
	assert_null(session_find(idcur));
}

/* A session's record is written once the dispatch that opened it is over
 * (the login has its answer), with its login's start time, and removed once
 * the one that closed it is. */
static void test_records_after_dispatch(void **state)
{
	(void)state;
	struct session *s = login(SESSION_READY);
	uint64_t id = s->id;
	assert_int_equal(rec.saves, 0);
	users_collect();
	assert_int_equal(rec.saves, 1);
	assert_true(rec.saved.id == id);
	assert_int_equal(rec.saved.pid, getpid());
	assert_true(rec.saved.pid_start == proc_start_time(getpid()));
	users_collect();
	assert_int_equal(rec.saves, 1);
	session_close(s, "logout");
	assert_int_equal(rec.drops, 0);
	users_collect();
	assert_int_equal(rec.drops, 1);
	assert_true(rec.dropped == id);
}

/* A user's record is written once after the dispatch, however often its
 * manager changed in it, and never after the user was released (its record
 * dropped). */
static void test_user_record_after_dispatch(void **state)
{
	(void)state;
	struct session *s = login(SESSION_READY);
	struct user *u = user_find(ALICE);
	u->mgr.ev->changed(u);
	u->mgr.ev->changed(u);
	assert_int_equal(urec.saves, 0);
	users_collect();
	assert_int_equal(urec.saves, 1);
	users_collect();
	assert_int_equal(urec.saves, 1);
	session_close(s, "logout");
	fire(&u->stop_delay);
	u->mgr.ev->changed(u); /* stopping */
	manager_stopped(&u->mgr);
	u->mgr.ev->changed(u); /* stopped, and released */
	assert_null(user_find(ALICE));
	assert_int_equal(urec.drops, 1);
	users_collect();
	assert_int_equal(urec.saves, 1);
}

/* No record for a session closed in the dispatch that opened it, nor for
 * one whose login exited before the dispatch was over. */
static void test_no_record_for_a_gone_session(void **state)
{
	(void)state;
	session_close(login(SESSION_READY), "logout");
	users_collect();
	assert_int_equal(rec.saves, 0);
	assert_int_equal(rec.drops, 0);
	struct session *s = login(SESSION_READY);
	struct poller_fd *exited = login_exits(s);
	users_collect();
	assert_int_equal(rec.saves, 0);
	dispatch(exited);
	users_collect();
	assert_int_equal(rec.drops, 0);
}

/* A login that waits for a starting manager is answered when it is ready,
 * or told why not when it fails or its session closes. */
static void test_waiting_login(void **state)
{
	(void)state;
	sup.start_to = MANAGER_STARTING;
	struct session *s = login(SESSION_WAITING);
	assert_int_equal(waiters[0].timeout_ms, cfg.login_timeout * 1000);
	struct user *u = s->user;
	u->mgr.ev->ready(u->mgr.owner);
	assert_int_equal(answer.calls, 1);
	assert_int_equal(answer.result, SESSION_WAIT_READY);
	assert_string_equal(answer.why, "ready");
	assert_null(s->waiter);
	u->mgr.ev->ready(u->mgr.owner); /* answered once only */
	assert_int_equal(answer.calls, 1);

	u->mgr.state = MANAGER_STARTING; /* restarting: the next logins wait */
	struct session *s2 = login(SESSION_WAITING);
	u->mgr.ev->abandoned(u->mgr.owner, "manager exited with status 1 before it was ready");
	assert_int_equal(answer.calls, 2);
	assert_int_equal(answer.result, SESSION_WAIT_FAILED);
	assert_string_equal(answer.why, "manager exited with status 1 before it was ready");

	struct session *s3 = login(SESSION_WAITING);
	session_close(s3, "logout");
	assert_int_equal(answer.calls, 3);
	assert_int_equal(answer.result, SESSION_WAIT_FAILED);
	assert_string_equal(answer.why, "session closed while waiting");
	session_close(s2, "logout");
	session_close(s, "logout");
}

/* The login-wait policy: a login is held login_timeout plus a grace, then
 * released as expired; with login_timeout = 0 logins never wait. */
static void test_login_timeout(void **state)
{
	(void)state;
	sup.start_to = MANAGER_STARTING;
	cfg.login_timeout = 7;
	struct session_waiter *w;
	struct session *s = login_as("alice", SESSION_WAITING, &w);
	assert_int_equal(w->timeout_ms, 7000);
	assert_true(timer_armed(&w->expiry));
	assert_int_equal(w->expiry.deadline, 7000 + 5000);
	fire(&w->expiry);
	assert_int_equal(answer.calls, 1);
	assert_int_equal(answer.result, SESSION_WAIT_EXPIRED);
	assert_null(s->waiter);
	assert_ptr_equal(session_find(s->id), s); /* the session stays: the login went on */

	cfg.login_timeout = 0;
	struct session *s2 = login(SESSION_READY);
	assert_int_equal(s2->user->mgr.state, MANAGER_STARTING);
	assert_int_equal(answer.calls, 1);
	session_close(s2, "logout");
	session_close(s, "logout");
}

/* A login whose connection goes away while it waits is detached without an
 * answer; its expiry is disarmed. */
static void test_unwait(void **state)
{
	(void)state;
	sup.start_to = MANAGER_STARTING;
	struct session_waiter *w;
	struct session *s = login_as("alice", SESSION_WAITING, &w);
	session_unwait(w);
	assert_null(s->waiter);
	assert_null(w->session);
	assert_false(timer_armed(&w->expiry));
	session_unwait(w); /* twice: nothing */
	s->user->mgr.ev->ready(s->user->mgr.owner);
	assert_int_equal(answer.calls, 0);
	session_close(s, "logout");
	assert_int_equal(answer.calls, 0);
}

/* What session_open tells the server in each case. */
static void test_outcomes(void **state)
{
	(void)state;
	assert_null(login_as("nobody-here", SESSION_REFUSED, NULL));
	assert_string_equal(open_err, "unknown user 'nobody-here'");
	assert_null(user_find(ALICE));

	cfg.root_session = false;
	assert_null(login_as("root", SESSION_UNTRACKED, NULL));
	assert_null(user_find(0));

	/* The start itself fails: tracked (the module closes it), with why. */
	sup.start_to = MANAGER_BACKOFF;
	struct session *s = login(SESSION_FAILED);
	snprintf(s->user->mgr.last_failure, sizeof(s->user->mgr.last_failure), "no such file");
	/* A restart already due: the next login waits for it. */
	struct session *s2 = login(SESSION_WAITING);
	session_close(s2, "logout");
	session_close(s, "logout");

	/* A class without a manager is tracked, never waits. */
	cfg.login_timeout = 60;
	struct proto_open_session req = {0};
	snprintf(req.user, sizeof(req.user), "alice");
	snprintf(req.session_class, sizeof(req.session_class), "greeter");
	struct session_waiter w = {.release = waiter_release};
	struct session *g = NULL;
	char err[128];
	assert_int_equal(session_open(&req, getpid(), &w, &g, err, sizeof(err)), SESSION_READY);
	assert_non_null(g);
	assert_false(g->has_manager);
	assert_null(w.session);
	session_close(g, "logout");
}

/* After a reexec a waiting login is attached again: answered at once when
 * the manager is ready or down by then, else when it is. */
static void test_rewait(void **state)
{
	(void)state;
	sup.start_to = MANAGER_STARTING;
	struct session_waiter *w;
	struct session *s = login_as("alice", SESSION_WAITING, &w);
	session_unwait(w); /* the old image's client is gone */
	struct session_waiter again = {.release = waiter_release};
	session_rewait(s, &again);
	assert_ptr_equal(s->waiter, &again);
	assert_true(timer_armed(&again.expiry));
	assert_int_equal(answer.calls, 0);
	session_unwait(&again);

	s->user->mgr.state = MANAGER_READY;
	session_rewait(s, &again);
	assert_int_equal(answer.calls, 1);
	assert_int_equal(answer.result, SESSION_WAIT_READY);
	assert_null(s->waiter);

	s->user->mgr.state = MANAGER_FAILED;
	snprintf(s->user->mgr.last_failure, sizeof(s->user->mgr.last_failure), "exit 1");
	session_rewait(s, &again);
	assert_int_equal(answer.calls, 2);
	assert_int_equal(answer.result, SESSION_WAIT_FAILED);
	assert_string_equal(answer.why, "exit 1");
	session_close(s, "logout");
}

/* The manager fails for good: waiting logins hear why; the user stays
 * visible (FAILED) while it has sessions, and after them. */
static void test_manager_failed(void **state)
{
	(void)state;
	sup.start_to = MANAGER_STARTING;
	struct session *s = login(SESSION_WAITING);
	struct user *u = s->user;
	u->mgr.state = MANAGER_FAILED;
	u->mgr.ev->failed(u->mgr.owner, "manager exited with status 1 before it was ready");
	assert_int_equal(answer.calls, 1);
	assert_int_equal(answer.result, SESSION_WAIT_FAILED);
	session_close(s, "logout");
	assert_ptr_equal(user_find(ALICE), u);
	assert_false(timer_armed(&u->stop_delay));
	/* stop-user forgets it. */
	char err[128];
	assert_int_equal(user_stop(u, err, sizeof(err)), 0);
	assert_null(user_find(ALICE));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_stop_delay),
		T(test_login_within_stop_delay),
		T(test_no_stop_delay),
		T(test_linger),
		T(test_login_dies),
		T(test_one_login_many_sessions),
		T(test_login_pid_reused),
		T(test_records_after_dispatch),
		T(test_no_record_for_a_gone_session),
		T(test_user_record_after_dispatch),
		T(test_waiting_login),
		T(test_login_timeout),
		T(test_unwait),
		T(test_outcomes),
		T(test_rewait),
		T(test_manager_failed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
