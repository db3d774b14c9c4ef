/* SPDX-License-Identifier: BSD-2-Clause */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/close_range.h>
#include <linux/keyctl.h>
#include <linux/sched.h>

#include <security/pam_appl.h>

#include "log.h"
#include "util.h"

/* The managers' own PAM service: used when its file exists. */
#define MANAGER_PAM_SERVICE "dinit-userservd"
#ifndef DUS_PAM_DIR
#define DUS_PAM_DIR "/etc/pam.d"
#endif


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

/*
 * The managers' PAM stack, loaded once by the daemon: a pam_start handle of
 * MANAGER_PAM_SERVICE with no user and a conversation that answers nothing,
 * which every keeper inherits through its fork and uses as its own (it sets
 * PAM_USER and runs the stack; its pam_end frees its copy). pam_start in a
 * fresh process parses the files and dlopens every module: ~0.7 ms of each
 * cold login. The daemon never calls a module function: only libpam's parser
 * and the modules' loading run here, as in sshd's or login's root process.
 * libpam closes every file it reads, and loading a module opens nothing (no
 * module of the shipped or Debian's stacks does), so the keeper's close_range
 * takes nothing the handle needs; a stack that leaves an fd open is not held.
 *
 * Held while the service file and its directory are as they were stat'ed just
 * before the load: a replaced or edited file, or a file renamed into place
 * (pam-auth-update's common-*), is read again by the next start (where the file
 * is in a vendor directory, /etc/pam.d too: an override there comes first). An included
 * file edited in place changes neither: `reload` (spawn_pam_preload) drops it.
 * A change in the same tick of the filesystems' clock as the one stat'ed cannot
 * be told from none: while a ctime is not older than the clock's reading taken
 * before the stats (CLOCK_REALTIME_COARSE, what timestamps are taken from; a
 * ctime of whole seconds, as some filesystems keep: not older than that
 * second), every start loads the stack again.
 */
static struct {
	pam_handle_t *h;
	bool loaded;         /* a load was tried for these stats (h: it worked) */
	bool warned;         /* a failed load was logged; no more until one works */
	struct stat file, dir, etc;
	struct timespec at;  /* CLOCK_REALTIME_COARSE before the stats */
} held;

/* Where libpam looks before DUS_PAM_DIR when that is a vendor directory. */
#define ETC_PAM_DIR "/etc/pam.d"

static bool stat_same(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
		a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
		a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Whether a later change could have been given this very ctime. */
static bool ctime_racy(struct timespec c, struct timespec at)
{
	if (c.tv_nsec == 0)
		return c.tv_sec >= at.tv_sec;
	return c.tv_sec > at.tv_sec || (c.tv_sec == at.tv_sec && c.tv_nsec >= at.tv_nsec);
}

static bool held_racy(void)
{
	return ctime_racy(held.file.st_ctim, held.at) || ctime_racy(held.dir.st_ctim, held.at) ||
		ctime_racy(held.etc.st_ctim, held.at);
}

void spawn_pam_drop(void)
{
	if (held.h)
		pam_end(held.h, PAM_SUCCESS);
	held.h = NULL;
	held.loaded = false;
}

/* The lowest free fd: what the next open gets. */
static int lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return fd;
}

static void held_load(const struct stat *file, const struct stat *dir, const struct stat *etc,
	struct timespec at)
{
	static struct pam_conv conv = {pam_no_conv, NULL};
	spawn_pam_drop();
	held.file = *file;
	held.dir = *dir;
	held.etc = *etc;
	held.at = at;
	held.loaded = true;
	int fd = lowest_free_fd();
	int r = pam_start(MANAGER_PAM_SERVICE, NULL, &conv, &held.h);
	if (r == PAM_SUCCESS && lowest_free_fd() != fd) {
		pam_end(held.h, r);
		held.h = NULL;
		if (!held.warned)
			log_warn("loading the PAM service %s left an fd open: each manager's "
				"keeper loads it itself", MANAGER_PAM_SERVICE);
		held.warned = true;
		return;
	}
	if (r != PAM_SUCCESS) {
		if (!held.warned)
			log_warn("cannot load the PAM service %s: %s: each manager's keeper "
				"loads it itself", MANAGER_PAM_SERVICE, pam_strerror(held.h, r));
		held.warned = true;
		if (held.h)
			pam_end(held.h, r);
		held.h = NULL;
		return;
	}
	held.warned = false;
	log_info("loaded the managers' PAM service %s", MANAGER_PAM_SERVICE);
}

bool spawn_pam_available(void)
{
	struct timespec now;
	struct stat file, dir, etc = {0};
	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	if (stat(DUS_PAM_DIR "/" MANAGER_PAM_SERVICE, &file) < 0) {
		spawn_pam_drop(); /* no file: no PAM, and nothing held for a later one */
		return false;
	}
	if (stat(DUS_PAM_DIR, &dir) < 0)
		memset(&dir, 0, sizeof(dir));
	if (strcmp(DUS_PAM_DIR, ETC_PAM_DIR) && stat(ETC_PAM_DIR, &etc) < 0)
		memset(&etc, 0, sizeof(etc));
	if (!held.loaded || !stat_same(&file, &held.file) || !stat_same(&dir, &held.dir) ||
		!stat_same(&etc, &held.etc) || held_racy())
		held_load(&file, &dir, &etc, now);
	return true;
}

void spawn_pam_preload(void)
{
	spawn_pam_drop();
	spawn_pam_available();
}

/* The resource limits the daemon started with (before it raised its own
 * RLIMIT_NOFILE): every manager starts with these, then PAM's. */
static struct rlimit initial_limits[RLIM_NLIMITS];
static bool have_initial_limits;

void spawn_save_limits(void)
{
	for (int r = 0; r < RLIM_NLIMITS; r++)
		if (getrlimit(r, &initial_limits[r]) < 0) {
			log_err("getrlimit %d: %s", r, strerror(errno));
			return;
		}
	have_initial_limits = true;
}

int spawn_restore_limits(void)
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

/*
 * The group database's NSS modules, loaded once in the daemon: every child
 * looks the user's groups up (the keeper's getgrouplist, a manager's or a
 * helper's initgroups), and a lookup by getpwnam_r loads only the modules it
 * needed to find the user ("files" for a local user), so each fresh child
 * loaded the others, e.g. "systemd" of Debian's "group: files systemd", itself
 * (dlopen, relocation, the module's init): getgrouplist in a forked child took
 * 0.51 ms, and 0.12 ms after one lookup in its parent (BENCHMARKS.md, "Where
 * a cold login goes").
 * A lookup of root's groups loads every module of the group line (initgroups
 * asks each of them). glibc keeps the loaded modules for the process and reads
 * nsswitch.conf again when it changes, so this only has to run before the
 * first child and at a reload (a changed nsswitch.conf then costs the next
 * child its own load, nothing more).
 */
void spawn_nss_preload(void)
{
	gid_t groups[16];
	int n = (int)(sizeof(groups) / sizeof(groups[0]));
	(void)getgrouplist("root", 0, groups, &n); /* only the loading matters */
}

void spawn_init(void)
{
	/* Whatever session keyring we were started in (root's login) is not
	 * ours to pass on: every child starts from an anonymous one. */
	if (join_new_session_keyring() < 0 && errno != ENOSYS)
		log_warn("cannot join a new session keyring: %s", strerror(errno));
	spawn_pam_preload();
	spawn_nss_preload();
}

/* Whether children are created straight into their cgroup (clone3 with
 * CLONE_INTO_CGROUP), or forked and then moved (a write to cgroup.procs,
 * which costs an RCU grace period: milliseconds). */
static bool spawn_clone3 = true;
/* In a child: whether it was created in its cgroup already. */
static bool child_in_cgroup;

/* Whether clone3 exists (Linux >= 5.3): else children are fork()ed. */
static bool have_clone3 = true;

/*
 * fork(), with two differences where the kernel allows (clone3):
 * - with the user's cgroup directory, the child is created inside it. Only
 *   into a fresh cgroup (made for this start): Linux (6.18 at least)
 *   SIGKILLs a child cloned into a cgroup that was ever killed through
 *   cgroup.kill, so an older one (a crashed manager's) is joined through
 *   cgroup.procs instead (child_join_cgroup);
 * - share_fds: the child shares the parent's fd table until it takes a
 *   private one with only stdin/out/err (child_drop_fds, its first act). A
 *   fork copies the whole table, and the daemon holds one pidfd per session:
 *   with 19,000 fds open, fork + close_range + exit took 1.98 ms at best
 *   instead of 0.11 ms (bench/fork-fds.c).
 * A raw clone (glibc has no clone3 wrapper): glibc >= 2.34 asks the kernel
 * for the thread id where a child needs its own (raise, abort), so the keeper
 * may run PAM modules in it, as in a fork.
 */
/* Into the user's cgroup (CLONE_INTO_CGROUP) where fork_into's rules allow. */
static void clone_into(struct clone_args *args, int cgroup_dir, bool fresh)
{
	if (cgroup_dir >= 0 && fresh && spawn_clone3) {
		args->flags |= CLONE_INTO_CGROUP;
		args->cgroup = (uint64_t)cgroup_dir;
	}
}

static pid_t fork_into(int cgroup_dir, bool fresh, bool share_fds)
{
	struct clone_args args = {.flags = share_fds ? CLONE_FILES : 0, .exit_signal = SIGCHLD};
	clone_into(&args, cgroup_dir, fresh);
	if (args.flags && have_clone3) {
		long pid = syscall(SYS_clone3, &args, sizeof(args));
		if (pid == 0)
			child_in_cgroup = args.flags & CLONE_INTO_CGROUP;
		if (pid >= 0 || (errno != ENOSYS && errno != EINVAL && errno != E2BIG))
			return (pid_t)pid;
		if (errno == ENOSYS || !(args.flags & CLONE_INTO_CGROUP)) {
			log_debug("clone3: %s: forking", strerror(errno));
			have_clone3 = false;
		} else {
			log_debug("clone3 into a cgroup: %s: falling back to cgroup.procs",
				strerror(errno));
			spawn_clone3 = false;
		}
		return fork_into(cgroup_dir, fresh, share_fds);
	}
	pid_t pid = fork();
	if (pid == 0)
		child_in_cgroup = false;
	return pid;
}

/* First thing in a child of fork_into(share_fds): keep stdin, stdout and
 * stderr, close every other fd of the daemon's (the state_dir lock, the
 * control socket, clients, epoll, signalfd, timers, FIFOs, glibc's syslog
 * socket). */
static void child_drop_fds(void)
{
	/* The kernel copies only what is below 3 into the new table (the rest
	 * would be closed). A shared table must not be touched before this: a
	 * dup or close would be the daemon's too. */
	if (close_range(3, ~0U, CLOSE_RANGE_UNSHARE) < 0 &&
		(unshare(CLONE_FILES) < 0 || close_range(3, ~0U, 0) < 0)) {
		dprintf(2, "dinit-userservd: child %d: close_range: %s\n", (int)getpid(),
			strerror(errno));
		_exit(126);
	}
	log_after_fork(); /* its fd is closed already, and no other has taken it */
}

/* The child of helper_spawn, on its own stack in its parent's memory (the
 * daemon's, or a manager's process for log-rotate), the parent held until it
 * has exec'd: it touches nothing but its argument. */
struct helper_start {
	const char *path;
	char *const *argv;
	pid_t parent; /* not 0: dies with it (PR_SET_PDEATHSIG), and exits if it is gone */
	int err; /* why it could not exec */
};

static int helper_child(void *data)
{
	struct helper_start *h = data;
	if (h->parent && (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != h->parent))
		_exit(0);
	if (close_range(3, ~0U, CLOSE_RANGE_UNSHARE) == 0) {
		sigset_t none;
		sigemptyset(&none);
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL); /* its own: the handler table is not shared */
		sigprocmask(SIG_SETMASK, &none, NULL);
		char *envp[] = {NULL};
		execve(h->path, h->argv, envp);
	}
	h->err = errno;
	_exit(127);
}

/* vfork semantics, as posix_spawn: the caller waits until the child has
 * exec'd; -1 with the child's errno when it could not. One child at a time
 * uses the stack. */
static pid_t helper_spawn(const char *path, char *const argv[], pid_t parent)
{
	static char stack[16384] __attribute__((aligned(16)));
	struct helper_start h = {path, argv, parent, 0};
	pid_t pid = clone(helper_child, stack + sizeof(stack),
		CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &h);
	if (pid > 0 && h.err) { /* it exited: reaped with the orphans */
		errno = h.err;
		return -1;
	}
	return pid;
}

pid_t spawn_helper(const char *path, char *const argv[])
{
	return helper_spawn(path, argv, 0);
}

void spawn_probe(void)
{
	/* A cgroup fd that cannot be open: a kernel that knows CLONE_INTO_CGROUP
	 * fails with EBADF and creates nothing; one that does not, with ENOSYS,
	 * EINVAL or E2BIG (which fork_into takes as its cue to fall back). */
	pid_t pid = fork_into(INT_MAX, true, false);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	log_info("managers are created %s", spawn_clone3 ?
		"straight into their cgroup (clone3 CLONE_INTO_CGROUP)" :
		"and then moved into their cgroup (cgroup.procs)");
}

/* In the child, before the output is the user's: say why, to the daemon's log. */
static void child_fail(const struct account *u, const char *what)
{
	dprintf(2, "dinit-userservd: starting the manager of %s: %s: %s\n", u->name, what,
		strerror(errno));
	_exit(126);
}

/* The path of an open directory, to open it again in a child that has
 * dropped every fd of the daemon's: "" if it cannot be told. */
static void fd_path(int fd, char *out, size_t len)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = fd >= 0 ? readlink(link, out, len - 1) : -1;
	out[n > 0 ? n : 0] = '\0';
}

/* Default signal dispositions, nothing blocked, a session of its own, the
 * daemon's initial limits, /dev/null as stdin and stdout. */
static void child_reset(const struct account *u)
{
	sigset_t none;
	sigemptyset(&none);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setsid() < 0)
		child_fail(u, "setsid");
	if (spawn_restore_limits() < 0)
		child_fail(u, "restoring the daemon's initial limits");
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		child_fail(u, "/dev/null");
	if (null > 2)
		close(null);
}

/* A child not created in the user's cgroup (in_cgroup) joins it itself. */
static void child_join_cgroup(const struct account *u, int cgroup_dir, bool in_cgroup)
{
	if (cgroup_dir < 0 || in_cgroup)
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
 * manager_log_size. It is started by the manager's own process just before
 * the manager's exec, so it runs inside the manager's cgroup and PAM session,
 * as the manager's child, and dies with it (PR_SET_PDEATHSIG); nothing of it
 * is the daemon's to track. Set by spawn_as_user around the manager's fork
 * only (never for a waiter), read only in the forked child.
 */
static struct {
	unsigned cap; /* 0: no log-rotate */
	char prog[PROTO_PATH_SIZE];
} log_cap;

/*
 * In the manager's process, as the user, its output already on the log.
 * Created as posix_spawn does (helper_spawn, vfork semantics): a fork would
 * copy the page tables of this process, a copy of the daemon's (or the
 * keeper's, with its PAM modules) only to throw them away at the exec, while
 * the manager's start waits: 0.1-0.3 ms of every cold login (BENCHMARKS.md,
 * "Where a cold login goes").
 */
static void child_start_log_rotate(const char *log)
{
	char size[16];
	snprintf(size, sizeof(size), "%u", log_cap.cap);
	char *argv[] = {log_cap.prog, (char *)log, size, NULL};
	if (helper_spawn(argv[0], argv, getpid()) < 0)
		dprintf(2, "dinit-userservd: the log is not capped: cannot start %s: %s\n", argv[0],
			strerror(errno));
}

static void child_exec(const struct account *u, const char *path, char *const argv[],
	char *const envp[], const gid_t *groups, int ngroups)
{
	/* groups: the user's groups, looked up already (by the keeper), else -1 */
	if ((ngroups >= 0 ? setgroups((size_t)ngroups, groups) : initgroups(u->name, *u->gid)) < 0 ||
		setgid(*u->gid) < 0 || setuid(u->uid) < 0)
		child_fail(u, "becoming the user");
	/* Verify: the ids must stick, and root must not be regainable. */
	if (getuid() != u->uid || geteuid() != u->uid || getgid() != *u->gid ||
		getegid() != *u->gid || (u->uid != 0 && setuid(0) == 0))
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
	if (*u->rundir_managed && u->rundir[0]) { /* a rundir of ours: never write in another's */
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
 * ESTABLISH, open_session) with its copy of the daemon's loaded stack (or,
 * when the daemon holds none, a pam_start of its own), creates the manager, forwards every signal it
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
/* KEEPER_KILL_SIGNAL (spawn.h): SIGKILL the manager, then close. */

static void keeper_fail(pam_handle_t *h, const struct account *u, const char *what, int r)
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
		ssize_t n = read_text(AT_FDCWD, path, 0, buf, sizeof(buf));
		/* Our unreaped children's pids cannot be reused: kill is safe. */
		for (char *p = buf, *end; n > 0 && p < buf + n; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			kill((pid_t)pid, SIGKILL);
		}
		if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
			return;
	}
}

/* What the keeper's child needs to become the manager. */
struct manager_start {
	const struct account *u;
	const char *path;
	char *const *argv, *const *envp;
	const gid_t *groups;
	int ngroups;    /* -1: not looked up (initgroups in the child) */
	int cgroup_dir; /* the user's cgroup, or -1 */
	bool in_cgroup; /* created in it already */
};

/* The keeper's child: its signals as the manager gets them, a session of
 * its own, in the user's cgroup, then the manager (child_exec). */
static void manager_child(const struct manager_start *m)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setsid() < 0)
		child_fail(m->u, "setsid");
	child_join_cgroup(m->u, m->cgroup_dir, m->in_cgroup);
	child_exec(m->u, m->path, m->argv, m->envp, m->groups, m->ngroups);
}

#if defined(__x86_64__)
#define HAVE_CLONE3_RUN 1
#define XSTR(x) STR(x)
#define STR(x) #x
/*
 * clone3(args, size), and in the child fn(arg) on the stack args gives, then
 * exit with what fn returns. The kernel's answer: the child's pid, or -errno.
 * A few instructions of assembly because C cannot start a child on a stack
 * of its own (glibc's clone() can, but only by the clone syscall, which has
 * no CLONE_INTO_CGROUP; glibc 2.36 has no clone3 wrapper, and syscall()
 * returns through the caller's stack, which the child would then share).
 * The syscall keeps every register but rax, rcx and r11: fn and arg wait in
 * r8 and r9; the child starts with rsp at the 16-aligned top of its stack.
 */
long dus_clone3_run(struct clone_args *args, size_t size, int (*fn)(void *), void *arg);
__asm__(".text\n"
	".globl dus_clone3_run\n"
	".hidden dus_clone3_run\n"
	".type dus_clone3_run, @function\n"
	"dus_clone3_run:\n"
	"	mov %rdx, %r8\n"
	"	mov %rcx, %r9\n"
	"	mov $" XSTR(SYS_clone3) ", %eax\n"
	"	syscall\n"
	"	test %rax, %rax\n"
	"	jnz 1f\n"
	"	xor %ebp, %ebp\n" /* the child: the outermost frame of its stack */
	"	mov %r9, %rdi\n"
	"	call *%r8\n"
	"	mov %eax, %edi\n"
	"	mov $" XSTR(SYS_exit) ", %eax\n"
	"	syscall\n"
	"	hlt\n"
	"1:	ret\n"
	".size dus_clone3_run, .-dus_clone3_run\n");

static int manager_child_vm(void *m)
{
	manager_child(m);
	return 127; /* not reached: it exec'd or _exit'ed */
}
#endif

/*
 * The keeper creates the manager as posix_spawn would, with vfork semantics
 * (the child runs in the keeper's memory, on a stack of its own, while the
 * keeper waits for its exec) and straight into its cgroup: a fork copied the
 * keeper's page tables (the daemon's image and the PAM modules) only for the
 * exec to tear them down again, 0.2-0.4 ms of each cold login (BENCHMARKS.md,
 * "Where a cold login goes"). The child touches nothing of the keeper's
 * memory but its stack and the log-rotate start (helper_spawn): not the
 * syslog state (closelog), and no allocation, so it runs only with the
 * groups looked up (else initgroups would, in a forked child).
 * Elsewhere than x86_64, or where the kernel refuses, a fork (fork_into).
 */
static pid_t keeper_spawn_manager(struct manager_start *m, bool fresh)
{
#ifdef HAVE_CLONE3_RUN
	static char stack[65536] __attribute__((aligned(16)));
	if (m->ngroups >= 0 && have_clone3) {
		struct clone_args args = {
			.flags = CLONE_VM | CLONE_VFORK, .exit_signal = SIGCHLD,
			.stack = (uint64_t)(uintptr_t)stack, .stack_size = sizeof(stack),
		};
		clone_into(&args, m->cgroup_dir, fresh);
		m->in_cgroup = args.flags & CLONE_INTO_CGROUP;
		long pid = dus_clone3_run(&args, sizeof(args), manager_child_vm, m);
		if (pid >= 0)
			return (pid_t)pid;
		if (pid != -ENOSYS && pid != -EINVAL && pid != -E2BIG) {
			errno = (int)-pid;
			return -1;
		}
		/* Refused: fork_into finds out what again, and falls back. */
	}
#endif
	pid_t pid = fork_into(m->cgroup_dir, fresh, false);
	if (pid == 0) {
		/* The keeper's syslog connection (its PAM modules' calls), if
		 * any: its fd goes at child_exec's close_range. */
		log_after_fork();
		m->in_cgroup = child_in_cgroup;
		manager_child(m);
	}
	return pid;
}

static void keeper_main(const struct account *u, const char *path, char *const argv[],
	char *const envp[], int cgroup_dir, bool fresh)
{
	struct pam_conv conv = {pam_no_conv, NULL};
	/* The daemon's loaded stack (our copy: the daemon never runs it), else
	 * one of our own. */
	pam_handle_t *h = held.h;
	prctl(PR_SET_NAME, "(dus-pam)");
	int r = h ? pam_set_item(h, PAM_USER, u->name) :
		pam_start(MANAGER_PAM_SERVICE, u->name, &conv, &h);
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
		if (getgrouplist(u->name, *u->gid, groups, &n) >= 0)
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
	struct manager_start start = {u, path, argv, env, groups, ngroups, cgroup_dir, false};
	pid_t m = keeper_spawn_manager(&start, fresh);
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

void spawn_env_set(struct spawn_env *e, const char *name, const char *value)
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

void spawn_env_put(struct spawn_env *e, const char *assignment)
{
	char name[128];
	size_t nl = strcspn(assignment, "=");
	if (!assignment[nl] || nl >= sizeof(name))
		return;
	memcpy(name, assignment, nl);
	name[nl] = '\0';
	spawn_env_set(e, name, assignment + nl + 1);
}

/* The keeper: keeper_main. */
pid_t spawn_as_user(const struct account *u, char *const argv[], const struct spawn_env *env,
	int cgroup_dir, bool fresh, bool use_pam, unsigned cap, char *err, size_t errlen)
{
	char path[PROTO_PATH_SIZE];
	if (resolve_exec(argv[0], env->path, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "cannot execute %s: %s", argv[0], strerror(errno));
		return -1;
	}
	/* The keeper stays outside the user's cgroup; the manager is created in it. */
	log_cap.cap = cap;
	if (cap)
		snprintf(log_cap.prog, sizeof(log_cap.prog), "%s/log-rotate", backend_libexec_dir());
	/* The child drops every fd of the daemon's first thing, and opens the
	 * cgroup again if it needs it: to join it, or (the keeper) to create the
	 * manager in it. */
	char cgroup_path[PATH_MAX];
	fd_path(cgroup_dir, cgroup_path, sizeof(cgroup_path));
	pid_t pid = use_pam ? fork_into(-1, false, true) : fork_into(cgroup_dir, fresh, true);
	if (pid == 0) { /* the child keeps log_cap: read there only */
		child_drop_fds();
		cgroup_dir = -1;
		if (cgroup_path[0] && (use_pam || !child_in_cgroup) &&
			(cgroup_dir = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			child_fail(u, cgroup_path);
		child_reset(u);
		if (use_pam)
			keeper_main(u, path, argv, env->vars, cgroup_dir, fresh);
		child_join_cgroup(u, cgroup_dir, child_in_cgroup);
		child_exec(u, path, argv, env->vars, NULL, -1);
	}
	log_cap.cap = 0;
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	return pid;
}
