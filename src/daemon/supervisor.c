/* SPDX-License-Identifier: BSD-2-Clause */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "log.h"
#include "mkdirs.h"
#include "spawn.h"
#include "state.h"
#include "usergroup.h"
#include "userenv.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 30000
#define STABLE_MS 60000 /* up this long: earlier failures are forgiven */
#define KEEPER_GRACE_MS 5000 /* for a keeper's close, once the user's processes are killed */

static const struct config *config; /* the daemon's, kept up to date across reloads */
static struct hmap children; /* struct child by pid */
static struct hmap adopted;  /* struct child by pid: adopted managers, not our children */
static unsigned nmanagers;   /* manager processes alive */

static void manager_spawn(struct manager *mgr);
static void manager_exited(struct manager *mgr, int status);

const char *manager_state_name(enum manager_state state)
{
	switch (state) {
	case MANAGER_STOPPED: return "stopped";
	case MANAGER_STARTING: return "starting";
	case MANAGER_READY: return "ready";
	case MANAGER_BACKOFF: return "waiting";
	case MANAGER_STOPPING: return "stopping";
	case MANAGER_FAILED: return "failed";
	}
	return "unknown";
}

static void manager_set_state(struct manager *mgr, enum manager_state state)
{
	mgr->state = state;
	mgr->since = time(NULL);
	mgr->ev->changed(mgr->owner);
}

int supervisor_init(const struct config *cfg)
{
	config = cfg;
	/* Processes a manager double-forks stay in our tree, so that they can be
	 * found and killed at the stop, and are reaped by us. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		log_err("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
		return -1;
	}
	spawn_init();
	return 0;
}

void supervisor_finish(void)
{
	hmap_free(&children);
	hmap_free(&adopted);
}

bool supervisor_owns(pid_t pid)
{
	return pid > 0 && (hmap_find(&children, (uint64_t)pid) || hmap_find(&adopted, (uint64_t)pid));
}

unsigned supervisor_running(void)
{
	return nmanagers;
}

static void manager_timer(struct timer *t, void *data);
static void manager_signal(struct manager *mgr, int sig);

void manager_init(struct manager *mgr, const struct account *acct,
	const struct manager_events *ev, void *owner)
{
	memset(mgr, 0, sizeof(*mgr));
	mgr->state = MANAGER_STOPPED;
	mgr->since = time(NULL);
	mgr->ready_fd = mgr->ready_keep_fd = mgr->pidfd = -1;
	mgr->proc.mgr = mgr->waiter.mgr = mgr;
	mgr->waiter.waiter = true;
	mgr->acct = acct;
	mgr->ev = ev;
	mgr->owner = owner;
	timer_init(&mgr->timer, manager_timer, mgr);
}

static void ready_close(struct manager *mgr)
{
	if (mgr->ready_src)
		poller_remove_fd(mgr->ready_src);
	mgr->ready_src = NULL;
	if (mgr->ready_fd >= 0)
		close(mgr->ready_fd);
	if (mgr->ready_keep_fd >= 0)
		close(mgr->ready_keep_fd);
	mgr->ready_fd = mgr->ready_keep_fd = -1;
}

static void child_forget(struct child *c)
{
	if (c->pid) {
		hmap_remove(&children, &c->node);
		c->pid = 0;
	}
}

/*
 * Signal the supervised process (the manager, or its keeper) through its
 * pidfd, never by a pid that may have been reused. Without a pidfd
 * (pidfd_open failed at the spawn) only our own child is signalled by pid:
 * it cannot be reused before we reap it.
 */
static void manager_signal(struct manager *mgr, int sig)
{
	int r;
	if (mgr->pidfd >= 0)
		r = pidfd_send_signal(mgr->pidfd, sig, NULL, 0);
	else if (mgr->proc.pid && hmap_find(&children, (uint64_t)mgr->proc.pid))
		r = kill(mgr->proc.pid, sig);
	else
		return;
	if (r < 0 && errno != ESRCH)
		log_err("signal %d to the manager's pid %d: %s", sig, (int)mgr->proc.pid,
			strerror(errno));
}

static void manager_became_ready(struct manager *mgr)
{
	ready_close(mgr);
	manager_set_state(mgr, MANAGER_READY);
	mgr->ev->ready(mgr->owner);
}

static void ready_fifo_event(int fd, uint32_t events, void *data)
{
	struct manager *mgr = data;
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n > 0 && mgr->state == MANAGER_STARTING)
		manager_became_ready(mgr);
}

static void env_put_var(const char *assignment, void *data)
{
	spawn_env_put(data, assignment);
}

static void env_build(struct spawn_env *e, const struct account *u, const struct backend_plan *plan,
	const char *ready_fifo)
{
	const struct config *cfg = config;
	e->n = 0;
	e->vars[0] = NULL;
	spawn_env_set(e, "HOME", u->home);
	spawn_env_set(e, "USER", u->name);
	spawn_env_set(e, "LOGNAME", u->name);
	spawn_env_set(e, "SHELL", u->shell);
	spawn_env_set(e, "PATH", "/usr/local/bin:/usr/bin:/bin");
	if (u->rundir[0]) {
		spawn_env_set(e, "XDG_RUNTIME_DIR", u->rundir);
		if (cfg->export_dbus_address) {
			char addr[PROTO_PATH_SIZE + 16];
			snprintf(addr, sizeof(addr), "unix:path=%s/bus", u->rundir);
			spawn_env_set(e, "DBUS_SESSION_BUS_ADDRESS", addr);
		}
	}
	for (unsigned i = 0; i < cfg->n_manager_env; i++)
		spawn_env_put(e, cfg->manager_env[i]);
	for (unsigned i = 0; i < BACKEND_ENV_MAX && plan->env[i]; i++)
		spawn_env_put(e, plan->env[i]);
	userenv_foreach(u->uid, env_put_var, e); /* setenv: kept across restarts */
	if (ready_fifo)
		spawn_env_set(e, "DINIT_USERSERVD_READY", ready_fifo);
}

/* The readiness FIFO: the user may write it, nobody else may open it. */
static int ready_fifo_open(struct manager *mgr, const char *path, char *err, size_t errlen)
{
	const struct account *u = mgr->acct;
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "unlink %s: %s", path, strerror(errno));
		return -1;
	}
	if (mkfifo(path, 0600) < 0 || lchown(path, u->uid, *u->gid) < 0) {
		snprintf(err, errlen, "mkfifo %s: %s", path, strerror(errno));
		return -1;
	}
	mgr->ready_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	/* Holding a write end ourselves: no EOF/EPOLLHUP storm before the
	 * manager opens it, or after it closes it. */
	mgr->ready_keep_fd = mgr->ready_fd < 0 ? -1 : open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (mgr->ready_keep_fd < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		ready_close(mgr);
		return -1;
	}
	mgr->ready_src = poller_add_fd(mgr->ready_fd, EPOLLIN, ready_fifo_event, mgr);
	if (!mgr->ready_src) {
		snprintf(err, errlen, "cannot watch %s", path);
		ready_close(mgr);
		return -1;
	}
	return 0;
}

/* The size of the manager log in our runtime dir of u (0: none). Not followed. */
static off_t manager_log_size_now(const struct account *u)
{
	char path[PROTO_PATH_SIZE + 32];
	struct stat st;
	if (!*u->rundir_managed || !u->rundir[0])
		return 0;
	snprintf(path, sizeof(path), "%s/" MANAGER_LOG, u->rundir);
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : 0;
}

/* The start failed before anything ran: no restart will fix a bad plan. */
static void manager_fail_now(struct manager *mgr, const char *why)
{
	const struct account *u = mgr->acct;
	snprintf(mgr->last_failure, sizeof(mgr->last_failure), "%s", why);
	log_err("cannot start the manager of %s: %s", u->name, why);
	ready_close(mgr);
	usergroup_remove(u->uid);
	manager_set_state(mgr, MANAGER_FAILED);
	mgr->ev->failed(mgr->owner, why); /* may release the owner */
}

static void manager_spawn(struct manager *mgr)
{
	const struct config *cfg = config;
	const struct account *u = mgr->acct;
	char err[PROTO_TEXT_SIZE];
	char user_dir[PROTO_PATH_SIZE], fifo[PROTO_PATH_SIZE + 16];
	if (snprintf(user_dir, sizeof(user_dir), "%s/users/%u", cfg->state_dir,
		    (unsigned)u->uid) >= (int)sizeof(user_dir)) {
		manager_fail_now(mgr, "state_dir is too long");
		return;
	}
	snprintf(fifo, sizeof(fifo), "%s/ready", user_dir);
	snprintf(mgr->backend, sizeof(mgr->backend), "%s", cfg->backend);
	if (mkdirs(user_dir) < 0) {
		snprintf(err, sizeof(err), "cannot create %s: %s", user_dir, strerror(errno));
		manager_fail_now(mgr, err);
		return;
	}
	struct backend_user bu = {
		.uid = u->uid, .gid = *u->gid, .name = u->name, .home = u->home,
		.rundir = u->rundir, .user_dir = user_dir, .ready_fifo = fifo,
	};
	struct backend_plan *plan = calloc(1, sizeof(*plan));
	if (!plan) {
		manager_fail_now(mgr, "out of memory");
		return;
	}
	if (backend_prepare(cfg, &bu, plan, err, sizeof(err)) < 0) {
		free(plan);
		manager_fail_now(mgr, err);
		return;
	}
	mgr->stop_signal = plan->stop_signal ? plan->stop_signal : SIGTERM;
	if (!plan->argv[0]) { /* backend none: nothing to run */
		free(plan);
		manager_set_state(mgr, MANAGER_READY);
		mgr->ev->ready(mgr->owner);
		return;
	}
	if (plan->ready == BACKEND_READY_FIFO && ready_fifo_open(mgr, fifo, err, sizeof(err)) < 0) {
		free(plan);
		manager_fail_now(mgr, err);
		return;
	}
	struct spawn_env *env = malloc(sizeof(*env));
	if (!env) {
		free(plan);
		manager_fail_now(mgr, "out of memory");
		return;
	}
	env_build(env, u, plan, plan->ready == BACKEND_READY_FIFO ? fifo : NULL);
	/* Leftovers of an earlier run (a crashed manager's children) must not
	 * meet the new manager (its exit killed them; this is what may remain). */
	usergroup_clear(u->uid);
	bool fresh;
	int cgroup_fd = usergroup_dir_fd(u->uid, &fresh);
	/* What the log holds now is of earlier attempts: never copied again. */
	mgr->log_start = manager_log_size_now(u);
	bool use_pam = spawn_pam_available();
	pid_t pid = spawn_as_user(u, plan->argv, env, cgroup_fd, fresh, use_pam,
		config->manager_log_size, err, sizeof(err));
	pid_t wpid = 0;
	if (pid > 0 && plan->ready == BACKEND_READY_WAITER) {
		wpid = spawn_as_user(u, plan->waiter_argv, env, cgroup_fd, fresh, false, 0, err,
			sizeof(err));
		if (wpid < 0) {
			kill(pid, SIGKILL);
			log_err("readiness waiter of %s: %s", u->name, err);
		}
	}
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	free(env);
	enum backend_ready ready = plan->ready;
	free(plan);
	if (pid < 0) {
		manager_fail_now(mgr, err);
		return;
	}
	mgr->proc.pid = pid;
	mgr->proc_start = proc_start_time(pid);
	mgr->keeper = use_pam;
	mgr->killing = false;
	hmap_insert(&children, &mgr->proc.node, (uint64_t)pid);
	/* Our child, not reaped yet: this pidfd is certainly the manager's. */
	mgr->pidfd = (int)pidfd_open(pid, 0);
	if (mgr->pidfd < 0)
		log_warn("pidfd_open of the manager of %s (pid %d): %s", u->name, (int)pid,
			strerror(errno));
	nmanagers++;
	if (wpid > 0) {
		mgr->waiter.pid = wpid;
		mgr->waiter_start = proc_start_time(wpid);
		hmap_insert(&children, &mgr->waiter.node, (uint64_t)wpid);
	}
	mgr->started_ms = monotonic_ms();
	manager_set_state(mgr, MANAGER_STARTING);
	log_info("started the manager of %s (backend %s): pid %d%s", u->name, mgr->backend, (int)pid,
		use_pam ? " (its PAM session's keeper)" : "");
	if (ready == BACKEND_READY_NONE)
		manager_became_ready(mgr);
}

void manager_start(struct manager *mgr)
{
	switch (mgr->state) {
	case MANAGER_FAILED: /* a new login tries again, from scratch */
		mgr->window_failures = 0;
		mgr->backoff_ms = 0;
		/* fall through */
	case MANAGER_STOPPED:
		manager_spawn(mgr);
		break;
	case MANAGER_STOPPING:
		mgr->restart_after_stop = true;
		break;
	default:
		break;
	}
}

void manager_stop(struct manager *mgr)
{
	const struct config *cfg = config;
	const struct account *u = mgr->acct;
	mgr->restart_after_stop = false;
	switch (mgr->state) {
	case MANAGER_STOPPING:
		return;
	case MANAGER_STARTING:
	case MANAGER_READY:
		if (mgr->proc.pid) {
			ready_close(mgr);
			if (mgr->waiter.pid) {
				kill(mgr->waiter.pid, SIGKILL);
				child_forget(&mgr->waiter);
			}
			log_info("stopping the manager of %s (pid %d)", u->name, (int)mgr->proc.pid);
			manager_signal(mgr, mgr->stop_signal); /* a keeper passes it on */
			manager_set_state(mgr, MANAGER_STOPPING);
			timer_arm(&mgr->timer, (uint64_t)cfg->stop_timeout * 1000);
			mgr->ev->abandoned(mgr->owner, "the manager is being stopped");
			return;
		}
		break;
	default:
		break;
	}
	timer_disarm(&mgr->timer);
	manager_set_state(mgr, MANAGER_STOPPED);
	usergroup_remove(u->uid);
	mgr->ev->stopped(mgr->owner); /* may release the owner */
}

static void manager_timer(struct timer *t, void *data)
{
	struct manager *mgr = data;
	const struct account *u = mgr->acct;
	if (mgr->state == MANAGER_BACKOFF) {
		log_info("restarting the manager of %s", u->name);
		mgr->restarts++;
		manager_spawn(mgr);
	} else if (mgr->state == MANAGER_STOPPING && mgr->keeper && mgr->killing) {
		/* Last: the keeper did not get through its close in time. */
		log_warn("the PAM session keeper of %s (pid %d) did not exit within %u ms: "
			"killing it", u->name, (int)mgr->proc.pid, KEEPER_GRACE_MS);
		manager_signal(mgr, SIGKILL);
	} else if (mgr->state == MANAGER_STOPPING) {
		log_warn("the manager of %s did not stop within %u s: killing everything it started",
			u->name, config->stop_timeout);
		/* A keeper is killed last: it kills the manager, then closes. */
		manager_signal(mgr, mgr->keeper ? KEEPER_KILL_SIGNAL : SIGKILL);
		usergroup_kill(u->uid, mgr->proc.pid);
		if (mgr->keeper) {
			mgr->killing = true;
			timer_arm(&mgr->timer, KEEPER_GRACE_MS);
		}
	}
}

static void adopted_exited(int fd, uint32_t events, void *data)
{
	manager_exited(data, -1);
}

/* Whether pid is our child (after a reexec, the managers still are). */
static bool is_child(pid_t pid)
{
	siginfo_t si = {0};
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

void manager_adopt(struct manager *mgr, struct manager_record *rec)
{
	const struct account *u = mgr->acct;
	snprintf(mgr->backend, sizeof(mgr->backend), "%s", rec->backend);
	mgr->stop_signal = rec->stop_signal > 0 && rec->stop_signal < NSIG ? rec->stop_signal
									   : SIGTERM;
	/* The pidfd first, then the checks: once they pass, the pidfd is the
	 * recorded process (a pid reused before the open fails the start time),
	 * and every later signal goes through it, never through the pid. */
	int pidfd = rec->pid > 0 ? (int)pidfd_open(rec->pid, 0) : -1;
	uid_t uid = (uid_t)-1;
	uid_t want = rec->keeper ? 0 : u->uid; /* a keeper runs as root */
	if (pidfd < 0 || !proc_is(rec->pid, rec->start) || proc_uid(rec->pid, &uid) < 0 ||
		uid != want) {
		if (pidfd < 0 && errno != ESRCH)
			log_err("pidfd_open of the manager of %s (pid %d): %s", u->name,
				(int)rec->pid, strerror(errno));
		log_info("the manager of %s (pid %d) is gone%s", u->name, (int)rec->pid,
			uid != (uid_t)-1 && uid != want ? " (the pid runs as another user)" : "");
		if (pidfd >= 0)
			close(pidfd);
		return;
	}
	mgr->pidfd = pidfd;
	bool child = is_child(rec->pid);
	mgr->keeper = rec->keeper;
	if (child) { /* after a reexec: still ours, reaped on SIGCHLD */
		hmap_insert(&children, &mgr->proc.node, (uint64_t)rec->pid);
	} else {
		mgr->pidfd_src = poller_add_fd(mgr->pidfd, EPOLLIN, adopted_exited, mgr);
		if (!mgr->pidfd_src) {
			log_err("cannot watch the manager of %s (pid %d): %s", u->name,
				(int)rec->pid, strerror(errno));
			close(mgr->pidfd);
			mgr->pidfd = -1;
			return;
		}
		hmap_insert(&adopted, &mgr->proc.node, (uint64_t)rec->pid);
	}
	mgr->proc.pid = rec->pid;
	mgr->proc_start = rec->start;
	mgr->started_ms = monotonic_ms();
	/* The earlier daemon may have copied what the log holds: never again. */
	mgr->log_start = manager_log_size_now(u);
	nmanagers++;
	log_info("adopted the manager of %s: pid %d%s%s", u->name, (int)rec->pid,
		rec->keeper ? " (its PAM session's keeper)" : "", child ? "" : " (watched by pidfd)");
	if (rec->starting) {
		/* Still starting: keep waiting if its readiness can be observed. */
		if (rec->waiter_pid && proc_is(rec->waiter_pid, rec->waiter_start) &&
			is_child(rec->waiter_pid)) {
			mgr->waiter.pid = rec->waiter_pid;
			mgr->waiter_start = rec->waiter_start;
			hmap_insert(&children, &mgr->waiter.node, (uint64_t)rec->waiter_pid);
			manager_set_state(mgr, MANAGER_STARTING);
			return;
		}
		if (rec->ready_fd >= 0) {
			mgr->ready_fd = rec->ready_fd;
			mgr->ready_keep_fd = rec->ready_keep_fd;
			rec->ready_fd = rec->ready_keep_fd = -1;
			mgr->ready_src = poller_add_fd(mgr->ready_fd, EPOLLIN, ready_fifo_event, mgr);
			if (mgr->ready_src) {
				manager_set_state(mgr, MANAGER_STARTING);
				return;
			}
			ready_close(mgr);
		}
		log_warn("the manager of %s was starting; its readiness cannot be observed any "
			"more: taken as ready", u->name);
	}
	manager_set_state(mgr, MANAGER_READY);
}

void manager_handover(struct manager *mgr, struct handover *h)
{
	const struct account *u = mgr->acct;
	if (mgr->state != MANAGER_STARTING || mgr->ready_fd < 0)
		return;
	if (handover_add_ready(h, u->uid, mgr->ready_fd, mgr->ready_keep_fd) == 0) {
		fcntl(mgr->ready_fd, F_SETFD, 0);
		fcntl(mgr->ready_keep_fd, F_SETFD, 0);
	}
}

static void describe_status(int status, char *out, size_t len)
{
	if (status == -1) /* adopted, not our child: no status to be had */
		snprintf(out, len, "exited");
	else if (WIFEXITED(status))
		snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, len, "killed by signal %d (%s)", WTERMSIG(status),
			strsignal(WTERMSIG(status)));
	else
		snprintf(out, len, "ended (status 0x%x)", status);
}

/*
 * The last ten lines the user's manager wrote to its log, into the daemon's log,
 * when it failed: the reason (a service that could not start) is there. The
 * file is the user's: read without following links, only a regular file,
 * only its tail, with anything unprintable replaced. Only lines written since
 * this spawn and not copied yet (from mgr->log_start; from the start of the
 * file if it was rotated meanwhile): a restarted manager's copy never repeats
 * the lines of earlier attempts.
 */
static void log_manager_tail(struct manager *mgr)
{
	const struct account *u = mgr->acct;
	if (!*u->rundir_managed || !u->rundir[0])
		return;
	char path[PROTO_PATH_SIZE + 32];
	snprintf(path, sizeof(path), "%s/" MANAGER_LOG, u->rundir);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	char buf[4096];
	ssize_t n = -1;
	off_t start = mgr->log_start, off = 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		if (st.st_size < start) /* rotated (truncated) since: all of it is new */
			start = 0;
		off = st.st_size - start > (off_t)sizeof(buf) - 1 ? st.st_size - (off_t)sizeof(buf) + 1
								   : start;
		n = pread(fd, buf, sizeof(buf) - 1, off);
		if (n > 0)
			mgr->log_start = off + n;
	}
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if ((buf[i] < 0x20 && buf[i] != '\n') || buf[i] == 0x7f)
			buf[i] = '?';
	/* The last lines (the first may be cut: it is skipped when the tail
	 * starts inside it). */
	enum { TAIL_LINES = 10 };
	char *lines[TAIL_LINES] = {0};
	unsigned count = 0;
	char *p = buf;
	if (off > start && (p = strchr(buf, '\n')))
		p++;
	for (char *line = strtok(p ? p : buf, "\n"); line; line = strtok(NULL, "\n"))
		lines[count++ % TAIL_LINES] = line;
	unsigned first = count > TAIL_LINES ? count - TAIL_LINES : 0;
	for (unsigned i = first; i < count; i++)
		log_info("%s's manager wrote: %.300s", u->name, lines[i % TAIL_LINES]);
}

static void waiter_exited(struct manager *mgr, int status)
{
	const struct account *u = mgr->acct;
	if (mgr->state != MANAGER_STARTING)
		return;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		manager_became_ready(mgr);
		return;
	}
	char why[128], msg[PROTO_TEXT_SIZE];
	describe_status(status, why, sizeof(why));
	snprintf(msg, sizeof(msg), "services of %s did not come up (readiness check %s)",
		u->name, why);
	snprintf(mgr->last_failure, sizeof(mgr->last_failure), "%s", msg);
	log_manager_tail(mgr);
	/* The manager itself runs: later logins need not wait for this. */
	manager_set_state(mgr, MANAGER_READY);
	mgr->ev->failed(mgr->owner, msg);
}

static void manager_exited(struct manager *mgr, int status)
{
	const struct config *cfg = config;
	const struct account *u = mgr->acct;
	nmanagers--;
	ready_close(mgr);
	if (mgr->pidfd_src) { /* adopted, not our child */
		poller_remove_fd(mgr->pidfd_src);
		mgr->pidfd_src = NULL;
		hmap_remove(&adopted, &mgr->proc.node);
	}
	if (mgr->pidfd >= 0) {
		close(mgr->pidfd);
		mgr->pidfd = -1;
	}
	pid_t root = mgr->proc.pid;
	mgr->proc.pid = 0;
	if (mgr->waiter.pid) {
		kill(mgr->waiter.pid, SIGKILL);
		child_forget(&mgr->waiter); /* reaped as an orphan */
	}
	/* Whatever the manager left behind goes with it. */
	int left = usergroup_kill(u->uid, root);
	if (left)
		log_info("killed %d leftover process%s of %s's manager", left, left == 1 ? "" : "es",
			u->name);
	char why[128];
	describe_status(status, why, sizeof(why));

	if (mgr->state == MANAGER_STOPPING) {
		log_info("the manager of %s stopped (%s)", u->name, why);
		timer_disarm(&mgr->timer);
		manager_set_state(mgr, MANAGER_STOPPED);
		if (mgr->restart_after_stop) {
			mgr->restart_after_stop = false;
			manager_spawn(mgr);
			return;
		}
		usergroup_remove(u->uid);
		mgr->ev->stopped(mgr->owner); /* may release the owner */
		return;
	}

	uint64_t now = monotonic_ms();
	bool was_starting = mgr->state == MANAGER_STARTING;
	if (now - mgr->started_ms >= STABLE_MS) {
		mgr->window_failures = 0;
		mgr->backoff_ms = 0;
	}
	if (!mgr->window_failures || now - mgr->window_start_ms > (uint64_t)cfg->restart_window * 1000) {
		mgr->window_start_ms = now;
		mgr->window_failures = 0;
	}
	mgr->window_failures++;
	snprintf(mgr->last_failure, sizeof(mgr->last_failure), "manager %s%s", why,
		was_starting ? " before it was ready" : "");
	log_manager_tail(mgr);
	if (mgr->window_failures >= cfg->restart_limit) {
		log_err("the manager of %s %s; %u failures within %u s: giving up until the next login",
			u->name, why, mgr->window_failures, cfg->restart_window);
		usergroup_remove(u->uid);
		manager_set_state(mgr, MANAGER_FAILED);
		mgr->ev->failed(mgr->owner, mgr->last_failure); /* may release the owner */
		return;
	}
	mgr->backoff_ms = mgr->backoff_ms ? mgr->backoff_ms * 2 : BACKOFF_FIRST_MS;
	if (mgr->backoff_ms > BACKOFF_MAX_MS)
		mgr->backoff_ms = BACKOFF_MAX_MS;
	log_warn("the manager of %s %s: restarting in %u ms", u->name, why, mgr->backoff_ms);
	manager_set_state(mgr, MANAGER_BACKOFF);
	timer_arm(&mgr->timer, mgr->backoff_ms);
	if (was_starting)
		mgr->ev->abandoned(mgr->owner, mgr->last_failure);
}

void supervisor_reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return; /* 0: none left exited; -1 ECHILD: no children */
		struct hmap_node *n = hmap_find(&children, (uint64_t)pid);
		if (!n)
			continue; /* an orphan a manager left to us */
		struct child *c = container_of(n, struct child, node);
		struct manager *mgr = c->mgr;
		bool waiter = c->waiter;
		if (waiter) {
			child_forget(c);
			waiter_exited(mgr, status);
		} else {
			hmap_remove(&children, &c->node);
			manager_exited(mgr, status);
		}
	}
}
