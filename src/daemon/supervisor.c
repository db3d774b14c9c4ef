/* SPDX-License-Identifier: BSD-2-Clause */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/keyctl.h>
#include <linux/sched.h>

#include <security/pam_appl.h>

#include "backend.h"
#include "daemon.h"
#include "log.h"
#include "mkdirs.h"
#include "state.h"
#include "user.h"
#include "usergroup.h"
#include "userenv.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 30000
#define STABLE_MS 60000 /* up this long: earlier failures are forgiven */
#define KEEPER_GRACE_MS 5000 /* for a keeper's close, once the user's processes are killed */
#define ENV_MAX (16 + CONFIG_ENV_MAX + BACKEND_ENV_MAX + USERENV_MAX)

/* The managers' output, in the user's runtime dir. */
#define MANAGER_LOG "dinit-userservd.log"

/* The managers' own PAM service: used when its file exists. */
#define MANAGER_PAM_SERVICE "dinit-userservd"
#ifndef DUS_PAM_DIR
#define DUS_PAM_DIR "/etc/pam.d"
#endif

static struct hmap children; /* struct child by pid */
static struct hmap adopted;  /* struct child by pid: adopted managers, not our children */
static unsigned nmanagers;   /* manager processes alive */

static void manager_spawn(struct user *u);
static int join_new_session_keyring(void);
static void manager_exited(struct user *u, int status);

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
	user_save(mgr->proc.user);
}

int supervisor_init(void)
{
	/* Processes a manager double-forks stay in our tree, so that they can be
	 * found and killed at the stop, and are reaped by us. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		log_err("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
		return -1;
	}
	/* Whatever session keyring we were started in (root's login) is not
	 * ours to pass on: every child starts from an anonymous one. */
	if (join_new_session_keyring() < 0 && errno != ENOSYS)
		log_warn("cannot join a new session keyring: %s", strerror(errno));
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

void manager_init(struct manager *mgr, struct user *user)
{
	memset(mgr, 0, sizeof(*mgr));
	mgr->state = MANAGER_STOPPED;
	mgr->since = time(NULL);
	mgr->ready_fd = mgr->ready_keep_fd = mgr->pidfd = -1;
	mgr->proc.user = mgr->waiter.user = user;
	mgr->waiter.waiter = true;
	timer_init(&mgr->timer, manager_timer, user);
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

static void manager_became_ready(struct user *u)
{
	struct manager *mgr = &u->mgr;
	ready_close(mgr);
	manager_set_state(mgr, MANAGER_READY);
	user_manager_ready(u);
}

static void ready_fifo_event(int fd, uint32_t events, void *data)
{
	struct user *u = data;
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n > 0 && u->mgr.state == MANAGER_STARTING)
		manager_became_ready(u);
}

/* execve needs a path: look name up in the PATH the manager will get. */
static int resolve_exec(const char *name, const char *path_env, char *out, size_t len)
{
	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, X_OK);
	}
	const char *p = path_env;
	while (p && *p) {
		size_t n = strcspn(p, ":");
		if (n && snprintf(out, len, "%.*s/%s", (int)n, p, name) < (int)len &&
			access(out, X_OK) == 0)
			return 0;
		p += n + (p[n] == ':');
	}
	errno = ENOENT;
	return -1;
}

static int pam_no_conv(int n, const struct pam_message **msg, struct pam_response **resp,
	void *data)
{
	return PAM_CONV_ERR; /* nobody is there to answer */
}

/* The resource limits the daemon started with (before it raised its own
 * RLIMIT_NOFILE): every manager starts with these, then PAM's. */
static struct rlimit initial_limits[RLIM_NLIMITS];
static bool have_initial_limits;

void supervisor_save_limits(void)
{
	for (int r = 0; r < RLIM_NLIMITS; r++)
		if (getrlimit(r, &initial_limits[r]) < 0) {
			log_err("getrlimit %d: %s", r, strerror(errno));
			return;
		}
	have_initial_limits = true;
}

int supervisor_restore_limits(void)
{
	for (int r = 0; have_initial_limits && r < RLIM_NLIMITS; r++)
		if (setrlimit(r, &initial_limits[r]) < 0)
			return -1;
	return 0;
}

/* Join a new anonymous session keyring (nothing of the caller's old one is
 * reachable any more). 0, or -1 with errno; ENOSYS: no keyrings at all. */
static int join_new_session_keyring(void)
{
	return syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 ? -1 : 0;
}

/* Whether children are created straight into their cgroup (clone3 with
 * CLONE_INTO_CGROUP), or forked and then moved (a write to cgroup.procs,
 * which costs an RCU grace period: milliseconds). */
static bool spawn_clone3 = true;
/* In a child: whether it was created in its cgroup already. */
static bool child_in_cgroup;

/*
 * fork(), or, with the user's cgroup directory, a child created inside it.
 * Only into a fresh cgroup (made for this start): Linux (6.18 at least)
 * SIGKILLs a child cloned into a cgroup that was ever killed through
 * cgroup.kill, so an older one (a crashed manager's) is joined through
 * cgroup.procs instead. The clone3 child is a raw one (glibc has no
 * wrapper): it must not use anything that relies on glibc's idea of its
 * thread (raise, pthread_*); it only sets itself up and execs. Children
 * forked instead join their cgroup themselves (child_join_cgroup).
 */
static pid_t fork_into(int cgroup_dir, bool fresh)
{
	if (cgroup_dir >= 0 && fresh && spawn_clone3) {
		struct clone_args args = {
			.flags = CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)cgroup_dir,
		};
		long pid = syscall(SYS_clone3, &args, sizeof(args));
		if (pid == 0)
			child_in_cgroup = true;
		if (pid >= 0 || (errno != ENOSYS && errno != EINVAL && errno != E2BIG))
			return (pid_t)pid;
		log_debug("clone3 into a cgroup: %s: falling back to fork and cgroup.procs",
			strerror(errno));
		spawn_clone3 = false;
	}
	pid_t pid = fork();
	if (pid == 0)
		child_in_cgroup = false;
	return pid;
}

void supervisor_probe_spawn(void)
{
	/* A cgroup fd that cannot be open: a kernel that knows CLONE_INTO_CGROUP
	 * fails with EBADF and creates nothing; one that does not, with ENOSYS,
	 * EINVAL or E2BIG (which fork_into takes as its cue to fall back). */
	pid_t pid = fork_into(INT_MAX, true);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	log_info("managers are created %s", spawn_clone3 ?
		"straight into their cgroup (clone3 CLONE_INTO_CGROUP)" :
		"and then moved into their cgroup (cgroup.procs)");
}

/* In the child, before the output is the user's: say why, to the daemon's log. */
static void child_fail(const struct user *u, const char *what)
{
	dprintf(2, "dinit-userservd: starting the manager of %s: %s: %s\n", u->name, what,
		strerror(errno));
	_exit(126);
}

/*
 * First thing in every child the daemon forks, before anything that can take
 * time: keep stdin/out/err and keep (renumbered to 3, close-on-exec; -1:
 * none), close every other fd: the state_dir lock, the control socket,
 * clients, epoll, signalfd, timers, FIFOs. Returns the kept fd's number.
 */
static int child_drop_fds(const struct user *u, int keep)
{
	if (keep >= 0 && keep != 3) {
		if (dup3(keep, 3, O_CLOEXEC) < 0)
			child_fail(u, "dup3");
		keep = 3;
	}
	if (close_range(keep >= 0 ? 4 : 3, ~0U, 0) < 0)
		child_fail(u, "close_range");
	return keep;
}

/* Default signal dispositions, nothing blocked, a session of its own, the
 * daemon's initial limits, /dev/null as stdin and stdout. */
static void child_reset(const struct user *u)
{
	sigset_t none;
	sigemptyset(&none);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setsid() < 0)
		child_fail(u, "setsid");
	if (supervisor_restore_limits() < 0)
		child_fail(u, "restoring the daemon's initial limits");
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		child_fail(u, "/dev/null");
	if (null > 2)
		close(null);
}

/* A forked (not cloned) child joins the user's cgroup itself. */
static void child_join_cgroup(const struct user *u, int cgroup_dir)
{
	if (cgroup_dir < 0 || child_in_cgroup)
		return;
	int fd = openat(cgroup_dir, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		child_fail(u, "joining its cgroup");
	close(fd);
}

/*
 * In the child, reset (child_reset) and in its cgroup: become the user, with
 * nothing of the daemon left, and exec.
 * Once the user, the manager's stdout and stderr go to a log file in the
 * runtime dir the daemon manages for the user (opened as the user, so it is
 * the user's file and nothing there can steer a root open), or to /dev/null
 * when the daemon manages none: never to the daemon's own log, which a user must not be able to
 * forge lines into or truncate.
 */
/*
 * The manager's log cap: log-rotate (as the user) keeps the log under
 * manager_log_size. It is forked by the manager's own process just before
 * the manager's exec, so it runs inside the manager's cgroup and PAM session,
 * as the manager's child, and dies with it (PR_SET_PDEATHSIG); nothing of it
 * is the daemon's to track. Set by manager_spawn around the manager's spawn
 * only (never for a waiter), read only in the forked child.
 */
static struct {
	unsigned cap; /* 0: no log-rotate */
	char prog[PROTO_PATH_SIZE];
} log_cap;

/* In the manager's process, as the user, its output already on the log. */
static void child_start_log_rotate(const char *log)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0) {
		if (pid < 0)
			dprintf(2, "dinit-userservd: the log is not capped: fork: %s\n",
				strerror(errno));
		return;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(0);
	char size[16];
	snprintf(size, sizeof(size), "%u", log_cap.cap);
	char *argv[] = {log_cap.prog, (char *)log, size, NULL};
	char *envp[] = {NULL};
	if (close_range(3, ~0U, 0) < 0)
		_exit(126);
	execve(argv[0], argv, envp);
	dprintf(2, "dinit-userservd: the log is not capped: cannot execute %s: %s\n", argv[0],
		strerror(errno));
	_exit(127);
}

static void child_exec(const struct user *u, const char *path, char *const argv[],
	char *const envp[], const gid_t *groups, int ngroups)
{
	/* groups: the user's groups, looked up already (by the keeper), else -1 */
	if ((ngroups >= 0 ? setgroups((size_t)ngroups, groups) : initgroups(u->name, u->gid)) < 0 ||
		setgid(u->gid) < 0 || setuid(u->uid) < 0)
		child_fail(u, "becoming the user");
	/* Verify: the ids must stick, and root must not be regainable. */
	if (getuid() != u->uid || geteuid() != u->uid || getgid() != u->gid ||
		getegid() != u->gid || (u->uid != 0 && setuid(0) == 0))
		child_fail(u, "credentials did not stick");
	/* Nothing of root's session keyring (or of the PAM session's, opened
	 * as root) is reachable from the user's processes. */
	if (join_new_session_keyring() < 0 && errno != ENOSYS)
		child_fail(u, "joining a new session keyring");
	/* Still writing to the daemon's log: our own words only. */
	if (chdir(u->home) < 0) {
		dprintf(2, "dinit-userservd: the manager of %s starts in /: cannot enter its home "
			"%s: %s\n", u->name, u->home, strerror(errno));
		if (chdir("/") < 0)
			child_fail(u, "chdir /");
	}
	int out = -1;
	char log[PROTO_PATH_SIZE + 32];
	if (u->rundir_managed && u->rundir[0]) { /* a rundir of ours: never write in another's */
		snprintf(log, sizeof(log), "%s/" MANAGER_LOG, u->rundir);
		/* O_NONBLOCK: a FIFO planted there must not hang the start. */
		out = open(log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK |
			O_CLOEXEC, 0600);
		if (out >= 0 && fcntl(out, F_SETFL, O_APPEND) < 0) {
			close(out);
			out = -1;
		}
	}
	if (dup2(out >= 0 ? out : 0, 1) < 0 || dup2(out >= 0 ? out : 0, 2) < 0)
		_exit(126);
	if (close_range(3, ~0U, 0) < 0)
		_exit(126);
	if (out >= 0 && log_cap.cap)
		child_start_log_rotate(log);
	execve(path, argv, envp);
	dprintf(2, "dinit-userservd: cannot execute %s: %s\n", path, strerror(errno));
	_exit(127);
}

/* The marker of the managers' own PAM session: pam_dinit_userservd does
 * nothing in a session that carries it (it would wait for the very manager
 * whose session it is). Not passed on to the manager. */
#define MANAGER_SESSION_MARK "DINIT_USERSERVD_MANAGER_SESSION"

/*
 * The keeper: a small root process per manager when the managers' PAM
 * service exists (systemd's "(sd-pam)"). It opens the session (setcred
 * ESTABLISH, open_session), creates the manager, forwards every signal it
 * gets to it (KEEPER_KILL_SIGNAL: SIGKILL it), and once the manager has
 * exited kills whatever the manager left (it is their subreaper, so they
 * are all its descendants), then closes the session (close_session, setcred
 * DELETE) and exits with the manager's status. The daemon supervises the
 * keeper as the manager's process: its pid is the one recorded, signalled
 * and adopted, and the keeper is never in the user's cgroup, so that killing
 * everything of the user never kills it before its close. It holds nothing
 * of the daemon's: stdin/out on /dev/null, the daemon's stderr for its own
 * error lines, and whatever the PAM modules opened.
 */
#define KEEPER_KILL_SIGNAL (SIGRTMIN + 1)

static void keeper_fail(pam_handle_t *h, const struct user *u, const char *what, int r)
{
	dprintf(2, "dinit-userservd: PAM session %s for %s: %s: %s\n", MANAGER_PAM_SERVICE,
		u->name, what, pam_strerror(h, r));
}

/* SIGKILL every child of ours and reap them until none is left (their own
 * children come to us in turn: we are their subreaper). */
static void keeper_end_leftovers(void)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		/* Our unreaped children's pids cannot be reused: kill is safe. */
		for (char *p = buf, *end; n > 0 && p < buf + n; p = end) {
			buf[n] = '\0';
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			kill((pid_t)pid, SIGKILL);
		}
		if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
			return;
	}
}

static void keeper_main(const struct user *u, const char *path, char *const argv[],
	char *const envp[], int cgroup_dir, bool fresh)
{
	struct pam_conv conv = {pam_no_conv, NULL};
	pam_handle_t *h = NULL;
	prctl(PR_SET_NAME, "(dus-pam)");
	int r = pam_start(MANAGER_PAM_SERVICE, u->name, &conv, &h);
	if (r == PAM_SUCCESS)
		r = pam_putenv(h, MANAGER_SESSION_MARK "=1");
	for (size_t i = 0; r == PAM_SUCCESS && envp[i]; i++)
		r = pam_putenv(h, envp[i]);
	if (r == PAM_SUCCESS && (r = pam_acct_mgmt(h, PAM_SILENT)) != PAM_SUCCESS) {
		keeper_fail(h, u, "account", r);
		_exit(126);
	}
	/* As systemd does: credentials that cannot be established (a stack
	 * with no auth modules of its own falls back to "other", often
	 * pam_deny) are no reason not to start the manager. */
	bool cred = false;
	if (r == PAM_SUCCESS) {
		int c = pam_setcred(h, PAM_ESTABLISH_CRED | PAM_SILENT);
		if (c != PAM_SUCCESS)
			keeper_fail(h, u, "setcred (ignored)", c);
		cred = c == PAM_SUCCESS;
	}
	if (r == PAM_SUCCESS && (r = pam_open_session(h, PAM_SILENT)) != PAM_SUCCESS) {
		keeper_fail(h, u, "open_session", r);
		if (cred)
			pam_setcred(h, PAM_DELETE_CRED | PAM_SILENT);
		_exit(126);
	}
	if (r != PAM_SUCCESS) {
		keeper_fail(h, u, "pam_start", r);
		_exit(126);
	}
	char **env = pam_getenvlist(h);
	if (!env)
		_exit(126);
	size_t keep = 0;
	for (size_t i = 0; env[i]; i++)
		if (strncmp(env[i], MANAGER_SESSION_MARK "=", sizeof(MANAGER_SESSION_MARK)))
			env[keep++] = env[i];
	env[keep] = NULL;
	/* The user's groups, looked up here: the manager's process, new and cold,
	 * starts with as little work as possible before its exec. */
	int ngroups = -1; /* -1: not found out here, initgroups in the manager */
	gid_t *groups = NULL;
	for (int cap = 64; cap <= 65536 && ngroups < 0;) {
		gid_t *g = realloc(groups, (size_t)cap * sizeof(*g));
		if (!g)
			break;
		groups = g;
		int n = cap;
		if (getgrouplist(u->name, u->gid, groups, &n) >= 0)
			ngroups = n;
		else
			cap = n > cap ? n : cap * 2;
	}
	/* Signals wait for sigwaitinfo from before the manager exists: none is
	 * lost. The manager's orphans become ours, to be ended before the close. */
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	pid_t m = fork_into(cgroup_dir, fresh);
	if (m == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (setsid() < 0)
			child_fail(u, "setsid");
		child_join_cgroup(u, cgroup_dir);
		child_exec(u, path, argv, env, groups, ngroups);
	}
	if (cgroup_dir >= 0)
		close(cgroup_dir);
	int status = 126 << 8;
	if (m < 0) {
		dprintf(2, "dinit-userservd: starting the manager of %s: fork: %s\n", u->name,
			strerror(errno));
	} else {
		for (;;) {
			siginfo_t si;
			int sig = sigwaitinfo(&all, &si);
			if (sig == SIGCHLD) {
				pid_t p;
				while ((p = waitpid(-1, &r, WNOHANG)) > 0 && p != m)
					;
				if (p == m) {
					status = r;
					break;
				}
			} else if (sig == KEEPER_KILL_SIGNAL) {
				kill(m, SIGKILL);
			} else if (sig > 0) {
				kill(m, sig); /* unreaped: m cannot be another process */
			}
		}
	}
	keeper_end_leftovers();
	r = pam_close_session(h, PAM_SILENT);
	if (r != PAM_SUCCESS)
		keeper_fail(h, u, "close_session", r);
	if (cred && (r = pam_setcred(h, PAM_DELETE_CRED | PAM_SILENT)) != PAM_SUCCESS)
		keeper_fail(h, u, "setcred delete", r);
	pam_end(h, r);
	/* The manager's status, as if the keeper were the manager. */
	if (WIFSIGNALED(status)) {
		struct rlimit none = {0, 0};
		setrlimit(RLIMIT_CORE, &none);
		signal(WTERMSIG(status), SIG_DFL);
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, WTERMSIG(status));
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		raise(WTERMSIG(status));
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 126);
}

struct spawn_env {
	char *vars[ENV_MAX + 1];
	char store[ENV_MAX][PROTO_PATH_SIZE + 64];
	unsigned n;
	const char *path; /* the PATH value */
};

static void env_set(struct spawn_env *e, const char *name, const char *value)
{
	size_t nl = strlen(name);
	unsigned i;
	for (i = 0; i < e->n; i++) /* later settings replace earlier ones */
		if (!strncmp(e->vars[i], name, nl) && e->vars[i][nl] == '=')
			break;
	if (i == ENV_MAX)
		return;
	snprintf(e->store[i], sizeof(e->store[i]), "%s=%s", name, value);
	e->vars[i] = e->store[i];
	if (i == e->n)
		e->vars[++e->n] = NULL;
	if (!strcmp(name, "PATH"))
		e->path = e->store[i] + 5;
}

static void env_put(struct spawn_env *e, const char *assignment)
{
	char name[128];
	size_t nl = strcspn(assignment, "=");
	if (!assignment[nl] || nl >= sizeof(name))
		return;
	memcpy(name, assignment, nl);
	name[nl] = '\0';
	env_set(e, name, assignment + nl + 1);
}

static void env_put_var(const char *assignment, void *data)
{
	env_put(data, assignment);
}

static void env_build(struct spawn_env *e, const struct user *u, const struct backend_plan *plan,
	const char *ready_fifo)
{
	const struct config *cfg = daemon_config();
	e->n = 0;
	e->vars[0] = NULL;
	env_set(e, "HOME", u->home);
	env_set(e, "USER", u->name);
	env_set(e, "LOGNAME", u->name);
	env_set(e, "SHELL", u->shell);
	env_set(e, "PATH", "/usr/local/bin:/usr/bin:/bin");
	if (u->rundir[0]) {
		env_set(e, "XDG_RUNTIME_DIR", u->rundir);
		if (cfg->export_dbus_address) {
			char addr[PROTO_PATH_SIZE + 16];
			snprintf(addr, sizeof(addr), "unix:path=%s/bus", u->rundir);
			env_set(e, "DBUS_SESSION_BUS_ADDRESS", addr);
		}
	}
	for (unsigned i = 0; i < cfg->n_manager_env; i++)
		env_put(e, cfg->manager_env[i]);
	for (unsigned i = 0; i < BACKEND_ENV_MAX && plan->env[i]; i++)
		env_put(e, plan->env[i]);
	userenv_foreach(u->uid, env_put_var, e); /* setenv: kept across restarts */
	if (ready_fifo)
		env_set(e, "DINIT_USERSERVD_READY", ready_fifo);
}

/*
 * Start argv as the user: in the user's cgroup (cgroup_dir, or -1), and with
 * use_pam below a keeper (keeper_main) that holds the managers' PAM session.
 * Returns the pid to supervise (the keeper's, or the manager's), or -1 with
 * err set.
 */
static pid_t spawn_as_user(const struct user *u, char *const argv[], const struct spawn_env *env,
	int cgroup_dir, bool fresh, bool use_pam, char *err, size_t errlen)
{
	char path[PROTO_PATH_SIZE];
	if (resolve_exec(argv[0], env->path, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "cannot execute %s: %s", argv[0], strerror(errno));
		return -1;
	}
	/* The keeper stays outside the user's cgroup; the manager is created in it. */
	pid_t pid = use_pam ? fork() : fork_into(cgroup_dir, fresh);
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		cgroup_dir = child_drop_fds(u, cgroup_dir);
		child_reset(u);
		if (use_pam)
			keeper_main(u, path, argv, env->vars, cgroup_dir, fresh);
		child_join_cgroup(u, cgroup_dir);
		child_exec(u, path, argv, env->vars, NULL, -1);
	}
	return pid;
}

/* The readiness FIFO: the user may write it, nobody else may open it. */
static int ready_fifo_open(struct user *u, const char *path, char *err, size_t errlen)
{
	struct manager *mgr = &u->mgr;
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "unlink %s: %s", path, strerror(errno));
		return -1;
	}
	if (mkfifo(path, 0600) < 0 || lchown(path, u->uid, u->gid) < 0) {
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
	mgr->ready_src = poller_add_fd(mgr->ready_fd, EPOLLIN, ready_fifo_event, u);
	if (!mgr->ready_src) {
		snprintf(err, errlen, "cannot watch %s", path);
		ready_close(mgr);
		return -1;
	}
	return 0;
}

/* The size of the manager log in our runtime dir of u (0: none). Not followed. */
static off_t manager_log_size_now(const struct user *u)
{
	char path[PROTO_PATH_SIZE + 32];
	struct stat st;
	if (!u->rundir_managed || !u->rundir[0])
		return 0;
	snprintf(path, sizeof(path), "%s/" MANAGER_LOG, u->rundir);
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : 0;
}

/* The start failed before anything ran: no restart will fix a bad plan. */
static void manager_fail_now(struct user *u, const char *why)
{
	struct manager *mgr = &u->mgr;
	snprintf(mgr->last_failure, sizeof(mgr->last_failure), "%s", why);
	log_err("cannot start the manager of %s: %s", u->name, why);
	ready_close(mgr);
	usergroup_remove(u->uid);
	manager_set_state(mgr, MANAGER_FAILED);
	user_manager_failed(u, why); /* may free u */
}

static void manager_spawn(struct user *u)
{
	const struct config *cfg = daemon_config();
	struct manager *mgr = &u->mgr;
	char err[PROTO_TEXT_SIZE];
	char user_dir[PROTO_PATH_SIZE], fifo[PROTO_PATH_SIZE + 16];
	if (snprintf(user_dir, sizeof(user_dir), "%s/users/%u", cfg->state_dir,
		    (unsigned)u->uid) >= (int)sizeof(user_dir)) {
		manager_fail_now(u, "state_dir is too long");
		return;
	}
	snprintf(fifo, sizeof(fifo), "%s/ready", user_dir);
	snprintf(mgr->backend, sizeof(mgr->backend), "%s", cfg->backend);
	if (mkdirs(user_dir) < 0) {
		snprintf(err, sizeof(err), "cannot create %s: %s", user_dir, strerror(errno));
		manager_fail_now(u, err);
		return;
	}
	struct backend_user bu = {
		.uid = u->uid, .gid = u->gid, .name = u->name, .home = u->home,
		.rundir = u->rundir, .user_dir = user_dir, .ready_fifo = fifo,
	};
	struct backend_plan *plan = calloc(1, sizeof(*plan));
	if (!plan) {
		manager_fail_now(u, "out of memory");
		return;
	}
	if (backend_prepare(cfg, &bu, plan, err, sizeof(err)) < 0) {
		free(plan);
		manager_fail_now(u, err);
		return;
	}
	mgr->stop_signal = plan->stop_signal ? plan->stop_signal : SIGTERM;
	if (!plan->argv[0]) { /* backend none: nothing to run */
		free(plan);
		manager_set_state(mgr, MANAGER_READY);
		user_manager_ready(u);
		return;
	}
	if (plan->ready == BACKEND_READY_FIFO && ready_fifo_open(u, fifo, err, sizeof(err)) < 0) {
		free(plan);
		manager_fail_now(u, err);
		return;
	}
	struct spawn_env *env = malloc(sizeof(*env));
	if (!env) {
		free(plan);
		manager_fail_now(u, "out of memory");
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
	bool use_pam = access(DUS_PAM_DIR "/" MANAGER_PAM_SERVICE, F_OK) == 0;
	log_cap.cap = daemon_config()->manager_log_size;
	snprintf(log_cap.prog, sizeof(log_cap.prog), "%s/log-rotate", backend_libexec_dir());
	pid_t pid = spawn_as_user(u, plan->argv, env, cgroup_fd, fresh, use_pam, err,
		sizeof(err));
	log_cap.cap = 0;
	pid_t wpid = 0;
	if (pid > 0 && plan->ready == BACKEND_READY_WAITER) {
		wpid = spawn_as_user(u, plan->waiter_argv, env, cgroup_fd, fresh, false, err,
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
		manager_fail_now(u, err);
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
		manager_became_ready(u);
}

void manager_start(struct user *u)
{
	struct manager *mgr = &u->mgr;
	switch (mgr->state) {
	case MANAGER_FAILED: /* a new login tries again, from scratch */
		mgr->window_failures = 0;
		mgr->backoff_ms = 0;
		/* fall through */
	case MANAGER_STOPPED:
		manager_spawn(u);
		break;
	case MANAGER_STOPPING:
		mgr->restart_after_stop = true;
		break;
	default:
		break;
	}
}

void manager_stop(struct user *u)
{
	const struct config *cfg = daemon_config();
	struct manager *mgr = &u->mgr;
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
			user_release_waiters(u, false, "the manager is being stopped");
			return;
		}
		break;
	default:
		break;
	}
	timer_disarm(&mgr->timer);
	manager_set_state(mgr, MANAGER_STOPPED);
	usergroup_remove(u->uid);
	user_manager_stopped(u); /* may free u */
}

static void manager_timer(struct timer *t, void *data)
{
	struct user *u = data;
	struct manager *mgr = &u->mgr;
	if (mgr->state == MANAGER_BACKOFF) {
		log_info("restarting the manager of %s", u->name);
		mgr->restarts++;
		manager_spawn(u);
	} else if (mgr->state == MANAGER_STOPPING && mgr->keeper && mgr->killing) {
		/* Last: the keeper did not get through its close in time. */
		log_warn("the PAM session keeper of %s (pid %d) did not exit within %u ms: "
			"killing it", u->name, (int)mgr->proc.pid, KEEPER_GRACE_MS);
		manager_signal(mgr, SIGKILL);
	} else if (mgr->state == MANAGER_STOPPING) {
		log_warn("the manager of %s did not stop within %u s: killing everything it started",
			u->name, daemon_config()->stop_timeout);
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

/* The real uid of pid, from /proc/PID/status. -1 if it cannot be read. */
static int proc_uid(pid_t pid, uid_t *uid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strstr(buf, "\nUid:");
	unsigned long v;
	if (!p || sscanf(p + 5, "%lu", &v) != 1)
		return -1;
	*uid = (uid_t)v;
	return 0;
}

void manager_adopt(struct user *u, struct manager_record *rec)
{
	struct manager *mgr = &u->mgr;
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
		mgr->pidfd_src = poller_add_fd(mgr->pidfd, EPOLLIN, adopted_exited, u);
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
			mgr->ready_src = poller_add_fd(mgr->ready_fd, EPOLLIN, ready_fifo_event, u);
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

void manager_handover(struct user *u, struct handover *h)
{
	struct manager *mgr = &u->mgr;
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
static void log_manager_tail(struct user *u)
{
	if (!u->rundir_managed || !u->rundir[0])
		return;
	char path[PROTO_PATH_SIZE + 32];
	snprintf(path, sizeof(path), "%s/" MANAGER_LOG, u->rundir);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	char buf[4096];
	ssize_t n = -1;
	off_t start = u->mgr.log_start, off = 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		if (st.st_size < start) /* rotated (truncated) since: all of it is new */
			start = 0;
		off = st.st_size - start > (off_t)sizeof(buf) - 1 ? st.st_size - (off_t)sizeof(buf) + 1
								   : start;
		n = pread(fd, buf, sizeof(buf) - 1, off);
		if (n > 0)
			u->mgr.log_start = off + n;
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

static void waiter_exited(struct user *u, int status)
{
	struct manager *mgr = &u->mgr;
	if (mgr->state != MANAGER_STARTING)
		return;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		manager_became_ready(u);
		return;
	}
	char why[128], msg[PROTO_TEXT_SIZE];
	describe_status(status, why, sizeof(why));
	snprintf(msg, sizeof(msg), "services of %s did not come up (readiness check %s)",
		u->name, why);
	snprintf(mgr->last_failure, sizeof(mgr->last_failure), "%s", msg);
	log_manager_tail(u);
	/* The manager itself runs: later logins need not wait for this. */
	manager_set_state(mgr, MANAGER_READY);
	user_manager_failed(u, msg);
}

static void manager_exited(struct user *u, int status)
{
	const struct config *cfg = daemon_config();
	struct manager *mgr = &u->mgr;
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
			manager_spawn(u);
			return;
		}
		usergroup_remove(u->uid);
		user_manager_stopped(u); /* may free u */
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
	log_manager_tail(u);
	if (mgr->window_failures >= cfg->restart_limit) {
		log_err("the manager of %s %s; %u failures within %u s: giving up until the next login",
			u->name, why, mgr->window_failures, cfg->restart_window);
		usergroup_remove(u->uid);
		manager_set_state(mgr, MANAGER_FAILED);
		user_manager_failed(u, mgr->last_failure); /* may free u */
		return;
	}
	mgr->backoff_ms = mgr->backoff_ms ? mgr->backoff_ms * 2 : BACKOFF_FIRST_MS;
	if (mgr->backoff_ms > BACKOFF_MAX_MS)
		mgr->backoff_ms = BACKOFF_MAX_MS;
	log_warn("the manager of %s %s: restarting in %u ms", u->name, why, mgr->backoff_ms);
	manager_set_state(mgr, MANAGER_BACKOFF);
	timer_arm(&mgr->timer, mgr->backoff_ms);
	if (was_starting)
		user_release_waiters(u, false, mgr->last_failure);
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
		struct user *u = c->user;
		bool waiter = c->waiter;
		if (waiter) {
			child_forget(c);
			waiter_exited(u, status);
		} else {
			hmap_remove(&children, &c->node);
			manager_exited(u, status);
		}
	}
}
