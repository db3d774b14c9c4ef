/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests for src/daemon/supervisor.c: the manager state machine of
 * supervisor.h's diagram, linked against small fakes of what it drives:
 * spawning (spawn.h), cgroups (usergroup.h), the backend plan, the
 * handover, the poller's fds and timers (a timer fires when the test says
 * so) and, through --wrap, waitpid (exits the test queues), kill and
 * pidfd_send_signal (recorded), pidfd_open (none: signals go by pid; or,
 * for adoption, /dev/null standing for a pidfd) and monotonic_ms (a clock
 * the test moves). Nothing is forked or signalled, and no root is needed;
 * the only file system use is the readiness FIFO, in a temporary state_dir.
 * Adoption checks a recorded process against /proc for real: the test's
 * own process stands for a manager a previous daemon left.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "poller.h"
#include "proc.h"
#include "spawn.h"
#include "state.h"
#include "supervisor.h"
#include "usergroup.h"
#include "userenv.h"

#define FIRST_PID 4000001 /* fake pids: never signalled for real (kill is wrapped) */

/* ---- the world the supervisor sees ---- */

static struct {
	/* backend */
	enum backend_ready ready;
	bool nothing_to_run; /* backend "none" */
	bool prepare_fails;
	int stop_signal;
	/* spawning */
	bool spawn_fails;
	bool pam;
	unsigned spawns;
	unsigned last_log_cap;
	pid_t next_pid;
	/* cgroups */
	unsigned group_kills, group_removes;
	/* signals: the last one sent by kill() */
	pid_t kill_pid;
	int kill_sig;
	unsigned kills;
	/* exits, for waitpid */
	pid_t exit_pid[8];
	int exit_status[8];
	unsigned nexits;
	/* time */
	uint64_t now_ms;
	/* fds the poller watches: the readiness FIFO */
	poller_fd_fn fd_fn;
	void *fd_data;
	int fd;
	/* and an adopted manager's pidfd */
	bool pidfds;        /* pidfd_open gives one (/dev/null) */
	int pidfd;          /* the last it gave, -1 */
	poller_fd_fn pidfd_fn;
	void *pidfd_data;
} w;

/* ---- what the owner (the user module) is told ---- */

static struct {
	unsigned changed, ready, failed, stopped, abandoned;
	char why[512];
} ev;

static void on_changed(void *owner) { (void)owner; ev.changed++; }
static void on_ready(void *owner) { (void)owner; ev.ready++; }
static void on_failed(void *owner, const char *why)
{
	(void)owner;
	ev.failed++;
	snprintf(ev.why, sizeof(ev.why), "%s", why);
}
static void on_stopped(void *owner) { (void)owner; ev.stopped++; }
static void on_abandoned(void *owner, const char *why)
{
	(void)owner;
	ev.abandoned++;
	snprintf(ev.why, sizeof(ev.why), "%s", why);
}

static const struct manager_events events = {
	.changed = on_changed, .ready = on_ready, .failed = on_failed,
	.stopped = on_stopped, .abandoned = on_abandoned,
};

/* ---- fakes: spawn.h ---- */

void spawn_init(void) {}
bool spawn_pam_available(void) { return w.pam; }
void spawn_env_set(struct spawn_env *e, const char *name, const char *value)
{
	(void)e; (void)name; (void)value;
}
void spawn_env_put(struct spawn_env *e, const char *assignment) { (void)e; (void)assignment; }

pid_t spawn_as_user(const struct account *u, char *const argv[], const struct spawn_env *env,
	int cgroup_dir, bool fresh, bool use_pam, unsigned log_cap, char *err, size_t errlen)
{
	(void)u; (void)env; (void)cgroup_dir; (void)fresh; (void)use_pam;
	if (w.spawn_fails) {
		snprintf(err, errlen, "cannot execute %s: No such file or directory", argv[0]);
		return -1;
	}
	w.spawns++;
	w.last_log_cap = log_cap;
	return w.next_pid++;
}

/* ---- fakes: backend.h ---- */

const char *backend_libexec_dir(void) { return "/nonexistent"; }

int backend_prepare(const struct config *cfg, const struct backend_user *user,
	struct backend_plan *plan, char *err, size_t errlen)
{
	(void)cfg; (void)user;
	if (w.prepare_fails) {
		snprintf(err, errlen, "backend refused");
		return -1;
	}
	static char manager[] = "manager", waiter[] = "waiter";
	plan->argv[0] = w.nothing_to_run ? NULL : manager;
	plan->ready = w.ready;
	plan->waiter_argv[0] = waiter;
	plan->stop_signal = w.stop_signal;
	return 0;
}

/* ---- fakes: usergroup.h, state.h, userenv.h ---- */

int usergroup_kill(uid_t uid, pid_t root) { (void)uid; (void)root; w.group_kills++; return 0; }
int usergroup_clear(uid_t uid) { (void)uid; return 0; }
void usergroup_remove(uid_t uid) { (void)uid; w.group_removes++; }
int usergroup_dir_fd(uid_t uid, bool *fresh) { (void)uid; *fresh = true; return -1; }
int handover_add_ready(struct handover *h, uid_t uid, int fd, int keep_fd)
{
	(void)h; (void)uid; (void)fd; (void)keep_fd;
	return -1;
}
void userenv_foreach(uid_t uid, void (*fn)(const char *assignment, void *data), void *data)
{
	(void)uid; (void)fn; (void)data;
}

/* ---- fakes: poller.h (one watched fd at a time is all a manager has) ---- */

struct poller_fd { int fd; };
static struct poller_fd the_src, pidfd_src;

struct poller_fd *poller_add_fd(int fd, uint32_t events_, poller_fd_fn fn, void *data)
{
	(void)events_;
	if (fd >= 0 && fd == w.pidfd) {
		assert_null(w.pidfd_fn);
		w.pidfd_fn = fn;
		w.pidfd_data = data;
		pidfd_src.fd = fd;
		return &pidfd_src;
	}
	assert_null(w.fd_fn); /* one at a time */
	w.fd_fn = fn;
	w.fd_data = data;
	w.fd = fd;
	the_src.fd = fd;
	return &the_src;
}
void poller_remove_fd(struct poller_fd *src)
{
	if (src == &pidfd_src) {
		assert_non_null(w.pidfd_fn);
		w.pidfd_fn = NULL;
		return;
	}
	assert_ptr_equal(src, &the_src);
	w.fd_fn = NULL;
}
void timer_init(struct timer *t, timer_fn fn, void *data)
{
	t->fn = fn;
	t->data = data;
	t->heap_index = SIZE_MAX;
}
int timer_arm(struct timer *t, uint64_t delay_ms)
{
	t->deadline = w.now_ms + delay_ms;
	t->heap_index = 0;
	return 0;
}
void timer_disarm(struct timer *t) { t->heap_index = SIZE_MAX; }
bool timer_armed(const struct timer *t) { return t->heap_index != SIZE_MAX; }

/* ---- wrapped calls ---- */

uint64_t __wrap_monotonic_ms(void);
uint64_t __wrap_monotonic_ms(void) { return w.now_ms; }

int __wrap_kill(pid_t pid, int sig);
int __wrap_kill(pid_t pid, int sig)
{
	w.kill_pid = pid;
	w.kill_sig = sig;
	w.kills++;
	return 0;
}

int __wrap_pidfd_open(pid_t pid, unsigned flags);
int __wrap_pidfd_open(pid_t pid, unsigned flags)
{
	(void)pid; (void)flags;
	if (!w.pidfds) {
		errno = ENOSYS;
		return -1;
	}
	w.pidfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return w.pidfd;
}

int __wrap_pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned flags);
int __wrap_pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned flags)
{
	(void)info; (void)flags;
	assert_int_equal(pidfd, w.pidfd);
	w.kill_pid = 0; /* not by pid */
	w.kill_sig = sig;
	w.kills++;
	return 0;
}

pid_t __wrap_waitpid(pid_t pid, int *status, int options);
pid_t __wrap_waitpid(pid_t pid, int *status, int options)
{
	(void)pid; (void)options;
	if (!w.nexits)
		return 0;
	pid_t p = w.exit_pid[0];
	*status = w.exit_status[0];
	w.nexits--;
	memmove(w.exit_pid, w.exit_pid + 1, w.nexits * sizeof(w.exit_pid[0]));
	memmove(w.exit_status, w.exit_status + 1, w.nexits * sizeof(w.exit_status[0]));
	return p;
}

/* ---- helpers ---- */

static struct config cfg;
static char state_dir[64];
static struct manager mgr;
static gid_t gid;
static bool rundir_managed;
static struct account alice; /* alice's: the manager keeps a pointer */

static void exits(pid_t pid, int status)
{
	w.exit_pid[w.nexits] = pid;
	w.exit_status[w.nexits++] = status;
	supervisor_reap();
}

static void fire(struct timer *t)
{
	assert_true(timer_armed(t));
	w.now_ms = t->deadline;
	t->heap_index = SIZE_MAX;
	t->fn(t, t->data);
}

/* The manager writes its readiness FIFO. */
static void signal_ready(void)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/users/%u/ready", state_dir, (unsigned)getuid());
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);
	assert_non_null(w.fd_fn);
	w.fd_fn(w.fd, 1, w.fd_data);
}

static int setup(void **state)
{
	(void)state;
	memset(&w, 0, sizeof(w));
	w.pidfd = -1;
	memset(&ev, 0, sizeof(ev));
	w.next_pid = FIRST_PID;
	w.ready = BACKEND_READY_FIFO;
	w.now_ms = 1000000;
	config_defaults(&cfg);
	snprintf(state_dir, sizeof(state_dir), "/tmp/dus-test-supervisor.XXXXXX");
	assert_non_null(mkdtemp(state_dir));
	snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", state_dir);
	cfg.restart_limit = 3;
	cfg.restart_window = 60;
	cfg.stop_timeout = 30;
	assert_int_equal(supervisor_init(&cfg), 0);
	gid = getgid();
	rundir_managed = false;
	alice = (struct account){
		.uid = getuid(), .gid = &gid, .name = "alice", .home = "/home/alice",
		.shell = "/bin/sh", .rundir = "", .rundir_managed = &rundir_managed,
	};
	manager_init(&mgr, &alice, &events, &mgr);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	/* Whatever the test left running goes; then the FIFO and dirs. */
	if (mgr.state != MANAGER_STOPPED && mgr.state != MANAGER_FAILED) {
		manager_stop(&mgr);
		if (mgr.proc.pid)
			exits(mgr.proc.pid, 0);
	}
	supervisor_finish();
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", state_dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void started(void)
{
	manager_start(&mgr);
	assert_int_equal(mgr.state, MANAGER_STARTING);
}

/* ---- the tests ---- */

/* STOPPED --start--> STARTING --ready--> READY, through the FIFO. */
static void test_start_ready_fifo(void **state)
{
	(void)state;
	unsigned changed = ev.changed;
	started();
	assert_int_equal(w.spawns, 1);
	assert_int_equal(mgr.proc.pid, FIRST_PID);
	assert_int_equal(w.last_log_cap, cfg.manager_log_size);
	assert_true(ev.changed > changed);
	assert_int_equal(supervisor_running(), 1);
	assert_true(supervisor_owns(FIRST_PID));
	assert_int_equal(ev.ready, 0);
	signal_ready();
	assert_int_equal(mgr.state, MANAGER_READY);
	assert_int_equal(ev.ready, 1);
	assert_null(w.fd_fn); /* the FIFO is no longer watched */
	/* A start is a no-op in READY. */
	manager_start(&mgr);
	assert_int_equal(w.spawns, 1);
}

/* Readiness that arrives long after a login stopped waiting (the login
 * timeout is the user module's): the supervisor never gives up on it. */
static void test_ready_after_timeout(void **state)
{
	(void)state;
	started();
	assert_false(timer_armed(&mgr.timer)); /* no deadline on starting */
	w.now_ms += (uint64_t)cfg.login_timeout * 1000 * 10;
	manager_start(&mgr); /* a later login: no-op while starting */
	assert_int_equal(w.spawns, 1);
	signal_ready();
	assert_int_equal(mgr.state, MANAGER_READY);
	assert_int_equal(ev.ready, 1);
}

/* Readiness NONE: READY at the spawn; backend none: READY, nothing spawned. */
static void test_ready_none_and_nothing_to_run(void **state)
{
	(void)state;
	w.ready = BACKEND_READY_NONE;
	manager_start(&mgr);
	assert_int_equal(mgr.state, MANAGER_READY);
	assert_int_equal(ev.ready, 1);
	assert_int_equal(w.spawns, 1);
	manager_stop(&mgr);
	exits(FIRST_PID, 0);
	assert_int_equal(mgr.state, MANAGER_STOPPED);

	w.nothing_to_run = true;
	manager_start(&mgr);
	assert_int_equal(mgr.state, MANAGER_READY);
	assert_int_equal(ev.ready, 2);
	assert_int_equal(w.spawns, 1);
	assert_int_equal(mgr.proc.pid, 0);
}

/* Readiness WAITER: its exit 0 is readiness; another exit a failed check
 * (the manager runs on: READY, and the owner hears why). */
static void test_waiter(void **state)
{
	(void)state;
	w.ready = BACKEND_READY_WAITER;
	started();
	assert_int_equal(w.spawns, 2);
	assert_int_equal(mgr.waiter.pid, FIRST_PID + 1);
	assert_int_equal(w.last_log_cap, 0); /* a waiter's output is never capped */
	exits(FIRST_PID + 1, 0);
	assert_int_equal(mgr.state, MANAGER_READY);
	assert_int_equal(ev.ready, 1);
	assert_int_equal(mgr.waiter.pid, 0);

	manager_stop(&mgr);
	exits(FIRST_PID, 0);
	started();
	exits(FIRST_PID + 3, 1 << 8);
	assert_int_equal(mgr.state, MANAGER_READY);
	assert_int_equal(ev.ready, 1);
	assert_int_equal(ev.failed, 1);
	assert_string_equal(ev.why,
		"services of alice did not come up (readiness check exited with status 1)");
}

/* STARTING --exit--> BACKOFF (waiting logins released) --timer--> STARTING;
 * the backoff doubles from 100 ms. */
static void test_exit_before_ready_backoff(void **state)
{
	(void)state;
	started();
	exits(FIRST_PID, 1 << 8);
	assert_int_equal(mgr.state, MANAGER_BACKOFF);
	assert_int_equal(ev.abandoned, 1);
	assert_string_equal(ev.why, "manager exited with status 1 before it was ready");
	assert_string_equal(mgr.last_failure, ev.why);
	assert_int_equal(w.group_kills, 1); /* its leftovers go with it */
	assert_int_equal(supervisor_running(), 0);
	assert_false(supervisor_owns(FIRST_PID));
	assert_true(timer_armed(&mgr.timer));
	assert_int_equal(mgr.timer.deadline - w.now_ms, 100);
	manager_start(&mgr); /* no-op in backoff */
	assert_int_equal(w.spawns, 1);
	fire(&mgr.timer);
	assert_int_equal(mgr.state, MANAGER_STARTING);
	assert_int_equal(w.spawns, 2);
	assert_int_equal(mgr.restarts, 1);
	exits(FIRST_PID + 1, 1 << 8);
	assert_int_equal(mgr.state, MANAGER_BACKOFF);
	assert_int_equal(mgr.timer.deadline - w.now_ms, 200);
}

/* READY --exit--> BACKOFF: nobody waits, nobody is released. */
static void test_exit_when_ready(void **state)
{
	(void)state;
	started();
	signal_ready();
	exits(FIRST_PID, SIGSEGV);
	assert_int_equal(mgr.state, MANAGER_BACKOFF);
	assert_int_equal(ev.abandoned, 0);
	assert_int_equal(ev.failed, 0);
	assert_string_equal(mgr.last_failure, "manager killed by signal 11 (Segmentation fault)");
}

/* restart_limit failures within restart_window: FAILED (until the next
 * start, which begins from scratch). */
static void test_failure_limit(void **state)
{
	(void)state;
	started();
	for (unsigned i = 1; i < cfg.restart_limit; i++) {
		exits(mgr.proc.pid, 1 << 8);
		assert_int_equal(mgr.state, MANAGER_BACKOFF);
		fire(&mgr.timer);
		assert_int_equal(mgr.state, MANAGER_STARTING);
	}
	unsigned removes = w.group_removes;
	exits(mgr.proc.pid, 1 << 8);
	assert_int_equal(mgr.state, MANAGER_FAILED);
	assert_int_equal(ev.failed, 1);
	assert_string_equal(ev.why, "manager exited with status 1 before it was ready");
	assert_int_equal(w.group_removes, removes + 1);
	assert_false(timer_armed(&mgr.timer));
	assert_int_equal(w.spawns, cfg.restart_limit);
	/* A new start: from scratch, with the first backoff again. */
	started();
	assert_int_equal(w.spawns, cfg.restart_limit + 1);
	exits(mgr.proc.pid, 1 << 8);
	assert_int_equal(mgr.state, MANAGER_BACKOFF);
	assert_int_equal(mgr.timer.deadline - w.now_ms, 100);
}

/* Failures further apart than restart_window never add up to the limit; a
 * manager up STABLE_MS (60 s) is forgiven its backoff too. */
static void test_failure_window_and_stable(void **state)
{
	(void)state;
	started();
	signal_ready();
	for (unsigned i = 0; i < cfg.restart_limit * 2; i++) {
		w.now_ms += (uint64_t)cfg.restart_window * 1000 + 1;
		exits(mgr.proc.pid, 1 << 8);
		assert_int_equal(mgr.state, MANAGER_BACKOFF);
		assert_int_equal(mgr.timer.deadline - w.now_ms, 100); /* was up > 60 s */
		fire(&mgr.timer);
	}
	/* Quick failures: the backoff doubles (from the last one, 100 ms) up
	 * to its cap (30 s). */
	unsigned expect = 200;
	cfg.restart_limit = 100;
	for (unsigned i = 0; i < 12; i++) {
		exits(mgr.proc.pid, 1 << 8);
		assert_int_equal(mgr.state, MANAGER_BACKOFF);
		assert_int_equal(mgr.timer.deadline - w.now_ms, expect);
		expect = expect * 2 > 30000 ? 30000 : expect * 2;
		fire(&mgr.timer);
	}
}

/* READY --stop--> STOPPING (stop signal, waiting logins released, the stop
 * timer) --exit--> STOPPED. */
static void test_stop(void **state)
{
	(void)state;
	w.stop_signal = SIGHUP;
	started();
	manager_stop(&mgr);
	assert_int_equal(mgr.state, MANAGER_STOPPING);
	assert_int_equal(w.kill_pid, FIRST_PID);
	assert_int_equal(w.kill_sig, SIGHUP);
	assert_int_equal(ev.abandoned, 1);
	assert_string_equal(ev.why, "the manager is being stopped");
	assert_null(w.fd_fn); /* readiness no longer watched */
	assert_true(timer_armed(&mgr.timer));
	assert_int_equal(mgr.timer.deadline - w.now_ms, cfg.stop_timeout * 1000);
	manager_stop(&mgr); /* no-op while stopping */
	assert_int_equal(w.kills, 1);
	exits(FIRST_PID, SIGHUP);
	assert_int_equal(mgr.state, MANAGER_STOPPED);
	assert_int_equal(ev.stopped, 1);
	assert_int_equal(ev.failed, 0);
	assert_false(timer_armed(&mgr.timer));
	assert_int_equal(supervisor_running(), 0);
}

/* A manager that ignores its stop signal: after stop_timeout, SIGKILL and
 * everything of the user killed. Under a keeper: the keeper's kill signal,
 * then SIGKILL to the keeper itself if it does not close in 5 s. */
static void test_stop_timeout(void **state)
{
	(void)state;
	started();
	manager_stop(&mgr);
	fire(&mgr.timer);
	assert_int_equal(w.kill_sig, SIGKILL);
	assert_int_equal(w.group_kills, 1);
	assert_int_equal(mgr.state, MANAGER_STOPPING);
	assert_false(timer_armed(&mgr.timer));
	exits(FIRST_PID, SIGKILL);
	assert_int_equal(mgr.state, MANAGER_STOPPED);

	w.pam = true;
	started();
	assert_true(mgr.keeper);
	manager_stop(&mgr);
	fire(&mgr.timer);
	assert_int_equal(w.kill_sig, KEEPER_KILL_SIGNAL);
	assert_true(timer_armed(&mgr.timer));
	assert_int_equal(mgr.timer.deadline - w.now_ms, 5000);
	fire(&mgr.timer);
	assert_int_equal(w.kill_sig, SIGKILL);
	assert_int_equal(w.kill_pid, FIRST_PID + 1);
	exits(FIRST_PID + 1, SIGKILL);
	assert_int_equal(mgr.state, MANAGER_STOPPED);
	assert_int_equal(ev.stopped, 2);
}

/* A start while stopping: once stopped, started again (the owner is not
 * told it stopped). */
static void test_start_while_stopping(void **state)
{
	(void)state;
	started();
	signal_ready();
	manager_stop(&mgr);
	manager_start(&mgr);
	assert_int_equal(mgr.state, MANAGER_STOPPING);
	exits(FIRST_PID, 0);
	assert_int_equal(mgr.state, MANAGER_STARTING);
	assert_int_equal(w.spawns, 2);
	assert_int_equal(ev.stopped, 0);
	/* A stop after the start cancels the restart. */
	manager_stop(&mgr);
	manager_start(&mgr);
	manager_stop(&mgr);
	exits(FIRST_PID + 1, 0);
	assert_int_equal(mgr.state, MANAGER_STOPPED);
	assert_int_equal(ev.stopped, 1);
}

/* BACKOFF --stop--> STOPPED at once (nothing runs), and STOPPED/FAILED
 * --stop--> STOPPED. */
static void test_stop_without_process(void **state)
{
	(void)state;
	started();
	exits(FIRST_PID, 1 << 8);
	assert_int_equal(mgr.state, MANAGER_BACKOFF);
	manager_stop(&mgr);
	assert_int_equal(mgr.state, MANAGER_STOPPED);
	assert_false(timer_armed(&mgr.timer));
	assert_int_equal(ev.stopped, 1);
	manager_stop(&mgr);
	assert_int_equal(mgr.state, MANAGER_STOPPED);
	assert_int_equal(ev.stopped, 2);
}

/* A start that fails before anything runs: FAILED, no retry. */
static void test_start_fails(void **state)
{
	(void)state;
	w.spawn_fails = true;
	manager_start(&mgr);
	assert_int_equal(mgr.state, MANAGER_FAILED);
	assert_int_equal(ev.failed, 1);
	assert_string_equal(ev.why, "cannot execute manager: No such file or directory");
	assert_false(timer_armed(&mgr.timer));
	assert_null(w.fd_fn); /* the FIFO was closed */
	w.spawn_fails = false;
	w.prepare_fails = true;
	manager_start(&mgr);
	assert_int_equal(mgr.state, MANAGER_FAILED);
	assert_int_equal(ev.failed, 2);
	assert_string_equal(ev.why, "backend refused");
	w.prepare_fails = false;
	started();
}

/* Every state has its name (status output, state files). */
static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(manager_state_name(MANAGER_STOPPED), "stopped");
	assert_string_equal(manager_state_name(MANAGER_STARTING), "starting");
	assert_string_equal(manager_state_name(MANAGER_READY), "ready");
	assert_string_equal(manager_state_name(MANAGER_BACKOFF), "waiting");
	assert_string_equal(manager_state_name(MANAGER_STOPPING), "stopping");
	assert_string_equal(manager_state_name(MANAGER_FAILED), "failed");
}

/* ---- adoption: a manager a previous daemon left (kill -9, reexec) ---- */

/* The lowest free fd: unchanged when nothing leaked. */
static int lowest_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close(fd);
	return fd;
}

/* What the state dir recorded of the manager: the test's own process. */
static struct manager_record record(void)
{
	return (struct manager_record){
		.pid = getpid(), .start = proc_start_time(getpid()), .stop_signal = SIGHUP,
		.backend = "runit", .ready_fd = -1, .ready_keep_fd = -1,
	};
}

/* The recorded process is still there, as the user: READY, watched by its
 * pidfd, signalled only through it (with the recorded stop signal), and
 * STOPPED once it exits, its pidfd closed. */
static void test_adopt(void **state)
{
	(void)state;
	w.pidfds = true;
	int fd0 = lowest_fd();
	struct manager_record rec = record();
	manager_adopt(&mgr, &rec);
	assert_int_equal(mgr.state, MANAGER_READY);
	assert_int_equal(mgr.proc.pid, getpid());
	assert_string_equal(mgr.backend, "runit");
	assert_non_null(w.pidfd_fn);
	assert_true(supervisor_owns(getpid()));
	assert_int_equal(supervisor_running(), 1);
	manager_stop(&mgr);
	assert_int_equal(mgr.state, MANAGER_STOPPING);
	assert_int_equal(w.kill_sig, SIGHUP);
	assert_int_equal(w.kill_pid, 0); /* never by pid */
	w.pidfd_fn(w.pidfd, 1, w.pidfd_data); /* it exits */
	assert_int_equal(mgr.state, MANAGER_STOPPED);
	assert_int_equal(ev.stopped, 1);
	assert_null(w.pidfd_fn);
	assert_false(supervisor_owns(getpid()));
	assert_int_equal(supervisor_running(), 0);
	assert_int_equal(lowest_fd(), fd0); /* the pidfd is closed */
}

/* A pid that now runs another process (its start time differs), or runs
 * as another user, is not adopted: STOPPED, nothing watched, no fd kept. */
static void test_adopt_refuses_another_process(void **state)
{
	(void)state;
	w.pidfds = true;
	int fd0 = lowest_fd();
	struct manager_record rec = record();
	rec.start++;
	manager_adopt(&mgr, &rec);
	assert_int_equal(mgr.state, MANAGER_STOPPED);
	assert_int_equal(mgr.proc.pid, 0);
	assert_null(w.pidfd_fn);
	assert_int_equal(lowest_fd(), fd0);

	/* The manager of another user: the right process, the wrong uid. */
	static struct account other;
	other = *mgr.acct;
	other.uid = getuid() + 1;
	manager_init(&mgr, &other, &events, &mgr);
	rec = record();
	manager_adopt(&mgr, &rec);
	assert_int_equal(mgr.state, MANAGER_STOPPED);
	assert_false(supervisor_owns(getpid()));
	assert_int_equal(lowest_fd(), fd0);

	/* A keeper runs as root: a keeper record of a non-root process is not one. */
	if (getuid() != 0) {
		manager_init(&mgr, &other, &events, &mgr);
		rec.keeper = true;
		manager_adopt(&mgr, &rec);
		assert_int_equal(mgr.state, MANAGER_STOPPED);
	}
}

/* It was starting: with its readiness FIFO handed over by a reexec it stays
 * STARTING until the FIFO says ready; without any way to observe it, it is
 * taken as ready. */
static void test_adopt_starting(void **state)
{
	(void)state;
	w.pidfds = true;
	int fifo[2];
	assert_int_equal(pipe2(fifo, O_CLOEXEC | O_NONBLOCK), 0);
	struct manager_record rec = record();
	rec.starting = true;
	rec.ready_fd = fifo[0];
	rec.ready_keep_fd = fifo[1];
	manager_adopt(&mgr, &rec);
	assert_int_equal(mgr.state, MANAGER_STARTING);
	assert_int_equal(rec.ready_fd, -1); /* taken */
	assert_int_equal(w.fd, fifo[0]);
	assert_int_equal(ev.ready, 0);
	assert_int_equal(write(fifo[1], "\n", 1), 1);
	w.fd_fn(w.fd, 1, w.fd_data);
	assert_int_equal(mgr.state, MANAGER_READY);
	assert_int_equal(ev.ready, 1);
	w.pidfd_fn(w.pidfd, 1, w.pidfd_data); /* it exits: restarted later */
	assert_int_equal(mgr.state, MANAGER_BACKOFF);

	manager_init(&mgr, &alice, &events, &mgr);
	rec = record();
	rec.starting = true;
	manager_adopt(&mgr, &rec);
	assert_int_equal(mgr.state, MANAGER_READY);
	assert_null(w.fd_fn);
	w.pidfd_fn(w.pidfd, 1, w.pidfd_data);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_start_ready_fifo),
		T(test_ready_after_timeout),
		T(test_ready_none_and_nothing_to_run),
		T(test_waiter),
		T(test_exit_before_ready_backoff),
		T(test_exit_when_ready),
		T(test_failure_limit),
		T(test_failure_window_and_stable),
		T(test_stop),
		T(test_stop_timeout),
		T(test_start_while_stopping),
		T(test_stop_without_process),
		T(test_start_fails),
		T(test_state_names),
		T(test_adopt),
		T(test_adopt_refuses_another_process),
		T(test_adopt_starting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
