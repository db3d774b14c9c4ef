/* SPDX-License-Identifier: BSD-2-Clause */
#include "user.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "linger.h"
#include "log.h"
#include "rundir.h"
#include "rundir_cleanup.h"
#include "state.h"
#include "userenv.h"

/* A waiting login is held this long beyond login_timeout, after which the
 * PAM module has long gone on without its manager. */
#define SESSION_WAIT_GRACE_MS 5000

static const struct config *config; /* the daemon's: valid and current across reloads */
static struct hmap users;    /* by uid */
static struct user *released; /* unlinked, freed by users_collect */
static struct hmap users_by_name; /* by name_hash(name) */
static struct hmap sessions; /* by id */
static struct hmap logins;   /* by pid */
/* Records to write and to remove after the dispatch (users_collect), by id. */
struct ids {
	uint64_t *v;
	size_t n, cap;
};
static struct ids to_save, to_drop;
static struct user *unsaved_users; /* through unsaved_next */
static uint64_t next_session_id = 1;
static bool stopping_all; /* daemon shutdown: nothing lingers */

/* Whether u's manager outlives its last session. */
static bool user_lingers(const struct user *u)
{
	switch (config->linger) {
	case CONFIG_LINGER_YES: return !stopping_all;
	case CONFIG_LINGER_MAYBE: return u->linger && !stopping_all;
	default: return false;
	}
}

static void user_rundir_removed(uid_t uid, const char *path);
static void user_release_waiters(struct user *u, enum session_wait_result result,
	const char *why);
static void session_wait(struct session *s, struct session_waiter *w);
static void session_release_waiter(struct session *s, enum session_wait_result result,
	const char *why);

int users_init(const struct config *cfg)
{
	config = cfg;
	linger_init(cfg);
	rundir_cleanup_init(cfg, user_rundir_removed);
	/* Session ids are never reused within a boot: start from the clock so a
	 * restarted daemon does not hand out an id a PAM handle still holds. */
	next_session_id = (uint64_t)monotonic_ms() << 16 | 1;
	return 0;
}

static uint64_t name_hash(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return h;
}

/* A known user by name: a warm login needs no passwd lookup. */
static struct user *user_find_by_name(const char *name)
{
	struct hmap_node *n = hmap_find(&users_by_name, name_hash(name));
	struct user *u = n ? container_of(n, struct user, name_node) : NULL;
	return u && !strcmp(u->acct.name, name) ? u : NULL; /* a hash collision: not found */
}

struct user *user_find(uid_t uid)
{
	struct hmap_node *n = hmap_find(&users, uid);
	return n ? container_of(n, struct user, node) : NULL;
}

struct session *session_find(uint64_t id)
{
	struct hmap_node *n = hmap_find(&sessions, id);
	return n ? container_of(n, struct session, node) : NULL;
}

/* Whether arg is a decimal uid (the CLI takes a name or a uid). */
static bool parse_uid(const char *arg, uid_t *uid)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(arg, &end, 10);
	if (!*arg || *end || errno || v > (uid_t)-2)
		return false;
	*uid = (uid_t)v;
	return true;
}

struct user *user_find_by_arg(const char *arg)
{
	uid_t uid;
	if (parse_uid(arg, &uid))
		return user_find(uid);
	size_t i;
	for (struct hmap_node *n = hmap_first(&users, &i); n; n = hmap_next(&users, n, &i)) {
		struct user *u = container_of(n, struct user, node);
		if (!strcmp(u->acct.name, arg))
			return u;
	}
	return NULL;
}

bool user_arg_is(const char *arg, uid_t uid)
{
	uid_t parsed;
	if (parse_uid(arg, &parsed))
		return parsed == uid;
	struct user *u = user_find_by_name(arg);
	if (u)
		return u->uid == uid;
	struct passwd pwbuf, *pw = NULL;
	char buf[4096];
	getpwnam_r(arg, &pwbuf, buf, sizeof(buf), &pw);
	return pw && pw->pw_uid == uid;
}

void session_terminate(struct session *s, uid_t by)
{
	const struct login *l = s->login;
	log_info("terminate-session %llu of %s (login process %d), asked by uid %u",
		(unsigned long long)s->id, s->user->acct.name, (int)l->pid, (unsigned)by);
	/* Through the pidfd: never a process that reused the pid. SIGHUP as for
	 * a hangup of its terminal, SIGTERM for logins that ignore it. */
	if (pidfd_send_signal(l->pidfd, SIGHUP, NULL, 0) < 0 && errno != ESRCH)
		log_warn("pidfd_send_signal %d: %s", (int)l->pid, strerror(errno));
	if (pidfd_send_signal(l->pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
		log_warn("pidfd_send_signal %d: %s", (int)l->pid, strerror(errno));
	session_close(s, "terminated");
}

/* Unlink u from everything; freed after the dispatch (users_collect). */
static void user_free(struct user *u)
{
	log_debug("forgetting user %s (uid %u)", u->acct.name, (unsigned)u->uid);
	timer_disarm(&u->stop_delay);
	if (u->rundir_managed && u->acct.rundir[0])
		rundir_cleanup_start(u->acct.rundir, u->uid);
	state_drop_user(u->uid);
	userenv_forget(u->uid);
	hmap_remove(&users, &u->node);
	hmap_remove(&users_by_name, &u->name_node);
	u->released_next = released;
	released = u;
}

static void user_destroy(struct user *u)
{
	free((char *)u->acct.name);
	free((char *)u->acct.home);
	free((char *)u->acct.shell);
	free((char *)u->acct.rundir);
	free(u);
}

/* Append id; false if out of memory. */
static bool ids_add(struct ids *ids, uint64_t id)
{
	if (ids->n == ids->cap) {
		size_t cap = ids->cap ? ids->cap * 2 : 16;
		uint64_t *v = realloc(ids->v, cap * sizeof(*v));
		if (!v)
			return false;
		ids->v = v;
		ids->cap = cap;
	}
	ids->v[ids->n++] = id;
	return true;
}

static void user_write(struct user *u);
static void session_save(const struct session *s);
static uint64_t login_start_time(struct login *l);

/* The records of the users changed and of the sessions opened and closed
 * since the last call. */
static void records_flush(void)
{
	for (struct user *u = unsaved_users; u; u = u->unsaved_next) {
		u->unsaved = false;
		if (user_find(u->uid) == u) /* not released since (its record dropped) */
			user_write(u);
	}
	unsaved_users = NULL;
	for (size_t i = 0; i < to_save.n; i++) {
		struct session *s = session_find(to_save.v[i]);
		if (!s) /* closed in the same dispatch: no record at all */
			continue;
		if (!login_start_time(s->login))
			continue; /* the login exited already: its end is reported next */
		session_save(s);
		s->saved = true;
	}
	to_save.n = 0;
	for (size_t i = 0; i < to_drop.n; i++)
		state_drop_session(to_drop.v[i]);
	to_drop.n = 0;
}

void users_collect(void)
{
	records_flush();
	while (released) {
		struct user *u = released;
		released = u->released_next;
		user_destroy(u);
	}
}

/* Set one of u's strings (*field, in u->acct) to a copy of value: -1 if out
 * of memory, the old one kept. */
static int user_set_str(const char **field, const char *value)
{
	if (*field && !strcmp(*field, value))
		return 0;
	char *copy = strdup(value);
	if (!copy) {
		log_err("out of memory");
		return -1;
	}
	free((char *)*field);
	*field = copy;
	return 0;
}

void user_save(struct user *u)
{
	if (u->unsaved)
		return;
	u->unsaved = true;
	u->unsaved_next = unsaved_users;
	unsaved_users = u;
}

static void user_write(struct user *u)
{
	struct state_user su = {
		.uid = u->uid,
		.manager_pid = u->mgr.proc.pid,
		.manager_start = u->mgr.proc_start,
		.rundir_managed = u->rundir_managed,
		.restarts = u->mgr.restarts,
		.stop_signal = u->mgr.stop_signal,
		.since = u->mgr.since,
		.starting = u->mgr.state == MANAGER_STARTING,
		.waiter_pid = u->mgr.waiter.pid,
		.waiter_start = u->mgr.waiter_start,
		.keeper = u->mgr.keeper,
	};
	proto_strlcpy(su.rundir, u->acct.rundir, sizeof(su.rundir));
	proto_strlcpy(su.backend, u->mgr.backend, sizeof(su.backend));
	state_save_user(&su);
}

static void session_save(const struct session *s)
{
	struct state_session ss = {
		.id = s->id, .uid = s->user->uid, .pid = s->login->pid,
		.pid_start = s->login->start, .flags = s->flags, .since = s->since, .export_rundir = s->export_rundir,
		.vtnr = s->vtnr, .has_manager = s->has_manager,
	};
	proto_strlcpy(ss.session_class, s->session_class, sizeof(ss.session_class));
	proto_strlcpy(ss.session_type, s->session_type, sizeof(ss.session_type));
	proto_strlcpy(ss.seat, s->seat, sizeof(ss.seat));
	proto_strlcpy(ss.service, s->service, sizeof(ss.service));
	proto_strlcpy(ss.tty, s->tty, sizeof(ss.tty));
	proto_strlcpy(ss.rhost, s->rhost, sizeof(ss.rhost));
	state_save_session(&ss);
}

/* Drop the user object if nothing needs it any more. */
static void user_release_if_idle(struct user *u)
{
	if (u->nsessions || user_lingers(u))
		return;
	if (u->mgr.state != MANAGER_STOPPED && u->mgr.state != MANAGER_FAILED)
		return;
	if (u->mgr.state == MANAGER_FAILED) {
		/* Stay visible in status, but the runtime dir goes now. */
		if (u->rundir_managed && u->acct.rundir[0])
			rundir_cleanup_start(u->acct.rundir, u->uid);
		u->rundir_managed = false;
		user_set_str(&u->acct.rundir, "");
		return;
	}
	user_free(u);
}

static void stop_delay_expired(struct timer *t, void *data)
{
	struct user *u = data;
	if (u->nmanager_sessions || user_lingers(u))
		return;
	log_info("stopping the manager of %s: last session ended", u->acct.name);
	manager_stop(&u->mgr);
}

/* The last session ended: stop after stop_delay, unless lingering. */
static void user_sessions_gone(struct user *u)
{
	if (user_lingers(u))
		return;
	unsigned delay = config->stop_delay;
	if (u->mgr.state == MANAGER_FAILED) { /* nothing runs; keep it visible */
		user_release_if_idle(u);
		return;
	}
	if (u->mgr.state == MANAGER_STOPPED || delay == 0) {
		manager_stop(&u->mgr);
		return;
	}
	timer_arm(&u->stop_delay, (uint64_t)delay * 1000);
}

/* An account's home and shell, with the defaults login(1) uses. */
static const char *pw_home(const struct passwd *pw)
{
	return pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/";
}

static const char *pw_shell(const struct passwd *pw)
{
	return pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh";
}

/* Give u the name it has now (its node in users_by_name follows). */
static void user_rename(struct user *u, const char *name)
{
	if (!strcmp(u->acct.name, name))
		return;
	log_info("uid %u is now called %s (was %s)", (unsigned)u->uid, name, u->acct.name);
	hmap_remove(&users_by_name, &u->name_node);
	user_set_str(&u->acct.name, name);
	/* Cannot fail: no growth. */
	hmap_insert(&users_by_name, &u->name_node, name_hash(u->acct.name));
}

/*
 * A first login (no session of the user is open) re-resolves the account:
 * the object is the uid's, and a name, home or shell changed since it was
 * made (usermod) is taken now. A known object that still holds the name
 * under another uid (the account was renamed, and the name given to a new
 * one) is re-resolved by its uid, so that it never answers for the name.
 */
static void user_refresh(struct user *u, const struct passwd *pw, struct user *stale)
{
	if (stale && stale != u) {
		struct passwd pwbuf, *cur = NULL;
		char buf[4096];
		char name[PROTO_NAME_SIZE];
		getpwuid_r(stale->uid, &pwbuf, buf, sizeof(buf), &cur);
		if (cur)
			proto_strlcpy(name, cur->pw_name, sizeof(name));
		else /* the account is gone: known by its uid only */
			snprintf(name, sizeof(name), "%u", (unsigned)stale->uid);
		user_rename(stale, name);
	}
	if (!u)
		return;
	user_rename(u, pw->pw_name);
	u->gid = pw->pw_gid;
	user_set_str(&u->acct.home, pw_home(pw));
	user_set_str(&u->acct.shell, pw_shell(pw));
}

static const struct manager_events user_manager_events; /* below */

static struct user *user_create(const struct passwd *pw)
{
	struct user *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	u->acct = (struct account){.uid = u->uid, .gid = &u->gid,
		.rundir_managed = &u->rundir_managed};
	if (user_set_str(&u->acct.name, pw->pw_name) < 0 ||
		user_set_str(&u->acct.home, pw_home(pw)) < 0 ||
		user_set_str(&u->acct.shell, pw_shell(pw)) < 0 ||
		user_set_str(&u->acct.rundir, "") < 0) {
		user_destroy(u);
		return NULL;
	}
	u->linger = linger_marked(u->acct.name);
	timer_init(&u->stop_delay, stop_delay_expired, u);
	manager_init(&u->mgr, &u->acct, &user_manager_events, u);
	if (hmap_insert(&users, &u->node, u->uid) < 0) {
		user_destroy(u);
		return NULL;
	}
	if (hmap_insert(&users_by_name, &u->name_node, name_hash(u->acct.name)) < 0) {
		hmap_remove(&users, &u->node);
		user_destroy(u);
		return NULL;
	}
	return u;
}

static void session_link(struct user *u, struct session *s)
{
	s->prev = NULL;
	s->next = u->sessions;
	if (u->sessions)
		u->sessions->prev = s;
	u->sessions = s;
	u->nsessions++;
	if (s->has_manager)
		u->nmanager_sessions++;
}

/* Every session a login process opened ends with it (the last one closed
 * frees the login). */
static void login_exited(int fd, uint32_t events, void *data)
{
	struct login *l = data;
	pid_t pid = l->pid;
	for (struct session *s = l->sessions, *next; s; s = next) {
		next = s->login_next; /* l is freed with the last */
		log_info("session %llu of %s: login process %d exited",
			(unsigned long long)s->id, s->user->acct.name, (int)pid);
		session_close(s, "login process exited");
	}
}

/* Whether the process runs still: its pidfd is not readable yet. */
static bool login_running(const struct login *l)
{
	struct pollfd p = {.fd = l->pidfd, .events = POLLIN};
	return poll(&p, 1, 0) == 0;
}

static void login_free(struct login *l)
{
	poller_remove_fd(l->src);
	close(l->pidfd);
	if (l->listed)
		hmap_remove(&logins, &l->node);
	free(l);
}

/* The login process pid, which runs now (the peer of a request, or checked
 * against its record): watched already, or from now on. NULL if it cannot
 * be, with errno. Freed with its last session (or login_free when it has none). */
static struct login *login_get(pid_t pid)
{
	struct hmap_node *n = hmap_find(&logins, (uint64_t)pid);
	if (n) {
		struct login *l = container_of(n, struct login, node);
		if (login_running(l)) /* it runs, and so does pid: the same process */
			return l;
		/* It exited and pid was reused before its exit was handled: that
		 * is still to come (its pidfd stays readable), out of the map. */
		hmap_remove(&logins, &l->node);
		l->listed = false;
	}
	struct login *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->pid = pid;
	l->pidfd = (int)pidfd_open(pid, 0);
	if (l->pidfd < 0) {
		free(l);
		return NULL;
	}
	l->src = poller_add_fd(l->pidfd, EPOLLIN, login_exited, l);
	if (!l->src || hmap_insert(&logins, &l->node, (uint64_t)pid) < 0) {
		poller_remove_fd(l->src);
		close(l->pidfd);
		free(l);
		errno = ENOMEM;
		return NULL;
	}
	l->listed = true;
	return l;
}

/* Its start time (0 if it exited): read once, out of the login's way
 * (records_flush, or taking a session over). */
static uint64_t login_start_time(struct login *l)
{
	if (!l->start) {
		uint64_t start = proc_start_time(l->pid);
		/* Read from the pid: the pidfd, not readable after the read, says
		 * the process ran during it, so the pid was still its own. */
		if (start && login_running(l))
			l->start = start;
	}
	return l->start;
}

static void login_link(struct login *l, struct session *s)
{
	s->login = l;
	s->login_prev = NULL;
	s->login_next = l->sessions;
	if (l->sessions)
		l->sessions->login_prev = s;
	l->sessions = s;
}

/* Unlink s from its login, freed with its last session. */
static void login_unlink(struct session *s)
{
	struct login *l = s->login;
	if (s->login_prev)
		s->login_prev->login_next = s->login_next;
	else
		l->sessions = s->login_next;
	if (s->login_next)
		s->login_next->login_prev = s->login_prev;
	if (!l->sessions)
		login_free(l);
}

/* rundir_size in MiB: N% of RAM as tmpfs's size=N% would compute it. */
static unsigned rundir_size_mib(const struct config *cfg)
{
	struct sysinfo si;
	if (!cfg->rundir_size_percent)
		return cfg->rundir_size;
	if (sysinfo(&si) < 0) {
		log_err("sysinfo: %s: rundir_size = %u%% taken as 1 MiB", strerror(errno),
			cfg->rundir_size_percent);
		return 1;
	}
	uint64_t mib = (uint64_t)si.totalram * si.mem_unit / 100 * cfg->rundir_size_percent >> 20;
	return mib ? (unsigned)mib : 1;
}

/* Create the user's managed runtime dir if it has none yet. */
static int user_make_rundir(struct user *u, char *err, size_t errlen)
{
	const struct config *cfg = config;
	if (u->acct.rundir[0])
		return 0;
	char path[PROTO_PATH_SIZE];
	if (rundir_expand(cfg->rundir_path, u->uid, u->gid, u->acct.name, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "rundir_path '%s' does not expand to a path", cfg->rundir_path);
		return -1;
	}
	if (rundir_cleanup_busy(path)) {
		/* Its last manager's is still being removed: nothing of the
		 * old one may meet the new manager. */
		if (!u->rundir_wait)
			log_info("%s is still being removed: the manager of %s starts once it is gone",
				path, u->acct.name);
		u->rundir_wait = true;
		return 0;
	}
	if (rundir_create(path, u->uid, u->gid, rundir_size_mib(cfg), err, errlen) < 0)
		return -1;
	if (user_set_str(&u->acct.rundir, path) < 0) {
		rundir_cleanup_start(path, u->uid);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	u->rundir_managed = true;
	user_save(u);
	return 0;
}

/* Decide this session's runtime dir; create ours when we manage it. */
static int session_setup_rundir(struct user *u, struct session *s,
	const struct proto_open_session *req, char *err, size_t errlen)
{
	const struct config *cfg = config;
	bool preset = req->rundir[0] != '\0';
	bool manage = !(req->flags & PROTO_OPEN_NORUNDIR) &&
		(cfg->manage_rundir == CONFIG_RUNDIR_YES ||
			(cfg->manage_rundir == CONFIG_RUNDIR_AUTO && !preset));
	if (!manage) {
		/* Something else manages it (or nothing): the manager uses what
		 * the first such login had, and we never create or remove it. */
		if (preset && !u->acct.rundir[0]) {
			user_set_str(&u->acct.rundir, req->rundir);
			user_save(u);
		}
		return 0;
	}
	if (user_make_rundir(u, err, errlen) < 0)
		return -1;
	s->export_rundir = u->rundir_managed || u->rundir_wait;
	return 0;
}

/* A zeroed session holding copies of service, tty and rhost. */
static struct session *session_new(const char *service, const char *tty, const char *rhost)
{
	size_t ls = strlen(service) + 1, lt = strlen(tty) + 1, lr = strlen(rhost) + 1;
	struct session *s = calloc(1, sizeof(*s) + ls + lt + lr);
	if (!s)
		return NULL;
	char *p = s->strings;
	s->service = memcpy(p, service, ls);
	s->tty = memcpy(p += ls, tty, lt);
	s->rhost = memcpy(p + lt, rhost, lr);
	return s;
}

enum session_outcome session_open(const struct proto_open_session *req, pid_t pid,
	struct session_waiter *w, struct session **out, char *err, size_t errlen)
{
	const struct config *cfg = config;
	*out = NULL;
	struct passwd pwbuf, *pw = NULL;
	char buf[4096];
	struct user *known = user_find_by_name(req->user);
	/* Warm: a session of the user is open, so its processes run and usermod
	 * refuses to rename or renumber the account; else re-resolve. */
	bool warm = known && known->nsessions;
	if (warm) { /* what the user object holds is what we need */
		pwbuf = (struct passwd){.pw_name = (char *)known->acct.name, .pw_uid = known->uid,
			.pw_gid = known->gid, .pw_dir = (char *)known->acct.home,
			.pw_shell = (char *)known->acct.shell};
		pw = &pwbuf;
	}
	int r = pw ? 0 : getpwnam_r(req->user, &pwbuf, buf, sizeof(buf), &pw);
	if (!pw) {
		snprintf(err, errlen, "unknown user '%.64s'%s%s", req->user, r ? ": " : "",
			r ? strerror(r) : "");
		log_warn("session refused: %s", err);
		return SESSION_REFUSED;
	}
	if (pw->pw_uid == 0 && !cfg->root_session) {
		log_debug("session of root (%s) not tracked: root_session = no", req->service);
		return SESSION_UNTRACKED;
	}
	struct login *l = login_get(pid);
	if (!l) {
		snprintf(err, errlen, "cannot watch login process %d: %s", (int)pid, strerror(errno));
		log_err("session of %s refused: %s", pw->pw_name, err);
		return SESSION_REFUSED;
	}
	struct user *u = user_find(pw->pw_uid);
	if (!warm)
		user_refresh(u, pw, known);
	bool created = false;
	if (!u) {
		u = user_create(pw);
		created = true;
	}
	struct session *s = u ? session_new(req->service, req->tty, req->rhost) : NULL;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->user = u;
	s->flags = req->flags;
	s->since = time(NULL);
	proto_strlcpy(s->session_class, req->session_class[0] ? req->session_class : "user",
		sizeof(s->session_class));
	proto_strlcpy(s->session_type, req->session_type, sizeof(s->session_type));
	proto_strlcpy(s->seat, req->seat, sizeof(s->seat));
	s->vtnr = req->vtnr;
	s->has_manager = config_class_has_manager(cfg, s->session_class);
	if (session_setup_rundir(u, s, req, err, errlen) < 0) {
		log_err("session of %s refused: %s", u->acct.name, err);
		goto fail;
	}
	s->id = next_session_id++;
	if (hmap_insert(&sessions, &s->node, s->id) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!ids_add(&to_save, s->id)) {
		hmap_remove(&sessions, &s->node);
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	login_link(l, s);
	session_link(u, s);
	log_info("session %llu opened: user %s (uid %u), service %s, tty %s%s%s, pid %d, "
		"class %s", (unsigned long long)s->id, u->acct.name, (unsigned)u->uid, s->service,
		s->tty[0] ? s->tty : "-", s->rhost[0] ? ", from " : "", s->rhost, (int)pid,
		s->session_class);
	*out = s;
	if (!s->has_manager) /* tracked only: no manager, no waiting */
		return SESSION_READY;
	timer_disarm(&u->stop_delay); /* a login within stop_delay keeps the manager */

	bool starting = u->rundir_wait; /* started by user_rundir_removed */
	if (!starting) {
		enum manager_state before = u->mgr.state;
		manager_start(&u->mgr);
		switch (u->mgr.state) {
		case MANAGER_READY:
			return SESSION_READY;
		case MANAGER_STARTING:
		case MANAGER_STOPPING: /* starts again once stopped */
			starting = true;
			break;
		case MANAGER_BACKOFF: /* a restart was already due, or the start itself failed */
			starting = before == MANAGER_BACKOFF;
			break;
		default:
			break;
		}
	}
	if (!starting) {
		snprintf(err, errlen, "the service manager of %s failed: %s", u->acct.name,
			u->mgr.last_failure);
		return SESSION_FAILED;
	}
	if (cfg->login_timeout == 0) /* logins never wait */
		return SESSION_READY;
	session_wait(s, w);
	return SESSION_WAITING;
fail:
	free(s);
	if (!l->sessions)
		login_free(l);
	if (created && u)
		user_release_if_idle(u);
	return SESSION_REFUSED;
}

void session_close(struct session *s, const char *why)
{
	struct user *u = s->user;
	log_info("session %llu closed: user %s, service %s (%s)", (unsigned long long)s->id,
		u->acct.name, s->service, why);
	session_release_waiter(s, SESSION_WAIT_FAILED, "session closed while waiting");
	login_unlink(s);
	hmap_remove(&sessions, &s->node);
	if (s->saved && !ids_add(&to_drop, s->id))
		state_drop_session(s->id); /* out of memory: now, then */
	if (s->prev)
		s->prev->next = s->next;
	else
		u->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	u->nsessions--;
	if (s->has_manager)
		u->nmanager_sessions--;
	free(s);
	if (!u->nmanager_sessions)
		user_sessions_gone(u);
}

void session_fill_reply(const struct session *s, struct proto_open_reply *reply)
{
	const struct user *u = s->user;
	reply->session_id = s->id;
	if (s->export_rundir)
		proto_strlcpy(reply->rundir, u->acct.rundir, sizeof(reply->rundir));
	if (config->export_dbus_address && u->acct.rundir[0]) {
		char bus[PROTO_PATH_SIZE];
		struct stat st;
		snprintf(bus, sizeof(bus), "%s/bus", u->acct.rundir);
		if (lstat(bus, &st) == 0 && S_ISSOCK(st.st_mode))
			snprintf(reply->dbus_address, sizeof(reply->dbus_address), "unix:path=%s", bus);
	}
}

void users_foreach(void (*fn)(struct user *u, void *data), void *data)
{
	size_t i;
	for (struct hmap_node *n = hmap_first(&users, &i); n; n = hmap_next(&users, n, &i))
		fn(container_of(n, struct user, node), data);
}

void sessions_foreach(void (*fn)(struct session *s, void *data), void *data)
{
	size_t i;
	for (struct hmap_node *n = hmap_first(&sessions, &i); n; n = hmap_next(&sessions, n, &i))
		fn(container_of(n, struct session, node), data);
}

void user_fill_info(const struct user *u, struct proto_user_info *info)
{
	memset(info, 0, sizeof(*info));
	info->uid = u->uid;
	info->gid = u->gid;
	proto_strlcpy(info->name, u->acct.name, sizeof(info->name));
	proto_strlcpy(info->state, manager_state_name(u->mgr.state), sizeof(info->state));
	info->manager_pid = u->mgr.proc.pid;
	proto_strlcpy(info->backend, u->mgr.backend[0] ? u->mgr.backend : config->backend,
		sizeof(info->backend));
	info->since = (uint64_t)u->mgr.since;
	info->restarts = u->mgr.restarts;
	proto_strlcpy(info->last_failure, u->mgr.last_failure, sizeof(info->last_failure));
	proto_strlcpy(info->rundir, u->acct.rundir, sizeof(info->rundir));
	info->linger = u->linger;
	info->sessions = u->nsessions;
}

void session_fill_info(const struct session *s, struct proto_session_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = s->id;
	info->uid = s->user->uid;
	proto_strlcpy(info->user, s->user->acct.name, sizeof(info->user));
	proto_strlcpy(info->service, s->service, sizeof(info->service));
	proto_strlcpy(info->tty, s->tty, sizeof(info->tty));
	proto_strlcpy(info->rhost, s->rhost, sizeof(info->rhost));
	info->flags = s->flags;
	info->pid = s->login->pid;
	info->since = (uint64_t)s->since;
	proto_strlcpy(info->session_class, s->session_class, sizeof(info->session_class));
	proto_strlcpy(info->session_type, s->session_type, sizeof(info->session_type));
	proto_strlcpy(info->seat, s->seat, sizeof(info->seat));
	info->vtnr = s->vtnr;
}

int user_stop(struct user *u, char *err, size_t errlen)
{
	if (u->mgr.state == MANAGER_STOPPED || u->mgr.state == MANAGER_STOPPING) {
		snprintf(err, errlen, "the manager of %s is not running", u->acct.name);
		return 0;
	}
	snprintf(err, errlen, "stopping the manager of %s", u->acct.name);
	log_info("stop-user %s", u->acct.name);
	timer_disarm(&u->stop_delay);
	manager_stop(&u->mgr);
	return 0;
}

int user_restart(struct user *u, char *err, size_t errlen)
{
	log_info("restart-user %s", u->acct.name);
	snprintf(err, errlen, "restarting the manager of %s", u->acct.name);
	timer_disarm(&u->stop_delay);
	uid_t uid = u->uid;
	manager_stop(&u->mgr);
	/* Still here (sessions, linger, or a manager still stopping keep the
	 * object): start again. */
	u = user_find(uid);
	if (!u)
		return 0;
	if (!u->rundir_wait)
		manager_start(&u->mgr);
	/* Without sessions that keep a manager (restarted within stop_delay of
	 * the last logout, or only a greeter's) the new manager goes as the old
	 * one would have: after stop_delay. */
	if (!u->nmanager_sessions)
		user_sessions_gone(u);
	return 0;
}

void users_stop_all(void)
{
	stopping_all = true;
	size_t i;
	struct hmap_node *n = hmap_first(&users, &i);
	while (n) {
		struct hmap_node *next = hmap_next(&users, n, &i);
		struct user *u = container_of(n, struct user, node);
		timer_disarm(&u->stop_delay);
		manager_stop(&u->mgr);
		n = next;
	}
}

/* Detach the login waiting on s (if any) and give it its answer. */
static void session_release_waiter(struct session *s, enum session_wait_result result,
	const char *why)
{
	struct session_waiter *w = s->waiter;
	if (!w)
		return;
	session_unwait(w);
	w->release(w, s, result, why);
}

/* Answer every login waiting for u's manager. */
static void user_release_waiters(struct user *u, enum session_wait_result result,
	const char *why)
{
	for (struct session *s = u->sessions; s; s = s->next)
		session_release_waiter(s, result, why);
}

/* The login gave up waiting (the module's own deadline is login_timeout) a
 * grace ago: its connection is not held any longer. */
static void session_wait_expired(struct timer *t, void *data)
{
	(void)t;
	struct session_waiter *w = data;
	if (w->session)
		session_release_waiter(w->session, SESSION_WAIT_EXPIRED,
			"timed out waiting for the service manager");
}

/* Attach w to s (neither attached yet): the login waits up to login_timeout. */
static void session_wait(struct session *s, struct session_waiter *w)
{
	s->waiter = w;
	w->session = s;
	w->timeout_ms = config->login_timeout * 1000u;
	timer_init(&w->expiry, session_wait_expired, w);
	timer_arm(&w->expiry, (uint64_t)w->timeout_ms + SESSION_WAIT_GRACE_MS);
}

void session_unwait(struct session_waiter *w)
{
	if (!w->session)
		return;
	w->session->waiter = NULL;
	w->session = NULL;
	timer_disarm(&w->expiry);
}

void session_rewait(struct session *s, struct session_waiter *w)
{
	session_wait(s, w);
	switch (s->user->mgr.state) {
	case MANAGER_READY:
		session_release_waiter(s, SESSION_WAIT_READY, "ready");
		break;
	case MANAGER_FAILED:
	case MANAGER_STOPPED:
		session_release_waiter(s, SESSION_WAIT_FAILED, s->user->mgr.last_failure[0]
			? s->user->mgr.last_failure : "the manager is not running");
		break;
	default:
		break;
	}
}

/* Events from the supervisor (struct manager_events; owner: the user). */
static void user_manager_ready(void *owner)
{
	struct user *u = owner;
	log_info("manager of %s is ready", u->acct.name);
	user_release_waiters(u, SESSION_WAIT_READY, "ready");
}

static void user_manager_failed(void *owner, const char *why)
{
	struct user *u = owner;
	log_err("manager of %s failed: %s", u->acct.name, why);
	if (u->mgr.state == MANAGER_FAILED) /* not a readiness check that failed */
		userenv_forget(u->uid);
	user_release_waiters(u, SESSION_WAIT_FAILED, why);
	user_release_if_idle(u);
}

static void user_manager_stopped(void *owner)
{
	struct user *u = owner;
	userenv_forget(u->uid); /* kept across restarts, not across a stop */
	user_release_waiters(u, SESSION_WAIT_FAILED, "the manager was stopped");
	user_release_if_idle(u);
}

static void user_manager_changed(void *owner)
{
	user_save(owner);
}

static void user_manager_abandoned(void *owner, const char *why)
{
	user_release_waiters(owner, SESSION_WAIT_FAILED, why);
}

static const struct manager_events user_manager_events = {
	.changed = user_manager_changed,
	.ready = user_manager_ready,
	.failed = user_manager_failed,
	.stopped = user_manager_stopped,
	.abandoned = user_manager_abandoned,
};

void users_finish(void)
{
	records_flush(); /* the sessions still open are the next daemon's */
	free(to_save.v);
	free(to_drop.v);
	to_save = to_drop = (struct ids){0};
	size_t i;
	struct hmap_node *n = hmap_first(&sessions, &i);
	while (n) {
		struct hmap_node *next = hmap_next(&sessions, n, &i);
		struct session *s = container_of(n, struct session, node);
		login_unlink(s);
		free(s);
		n = next;
	}
	hmap_free(&sessions);
	hmap_free(&logins);
	n = hmap_first(&users, &i);
	while (n) {
		struct hmap_node *next = hmap_next(&users, n, &i);
		struct user *u = container_of(n, struct user, node);
		/* Still has sessions: its records and runtime dir stay for the
		 * next daemon, which takes the sessions over. */
		timer_disarm(&u->stop_delay);
		user_destroy(u);
		n = next;
	}
	hmap_free(&users);
	hmap_free(&users_by_name);
	users_collect();
	userenv_finish();
}

/* Resolve a user the daemon may not know yet: name or decimal uid. */
static int resolve_user(const char *arg, struct passwd *pwbuf, char *buf, size_t len,
	struct passwd **pw)
{
	uid_t uid;
	if (parse_uid(arg, &uid))
		return getpwuid_r(uid, pwbuf, buf, len, pw);
	return getpwnam_r(arg, pwbuf, buf, len, pw);
}

/* Give a lingering user a running manager (and a runtime dir for it). */
static void user_linger_start(struct user *u)
{
	char err[PROTO_TEXT_SIZE];
	if (config->manage_rundir != CONFIG_RUNDIR_NO && user_make_rundir(u, err, sizeof(err)) < 0)
		log_err("lingering user %s: %s", u->acct.name, err);
	timer_disarm(&u->stop_delay);
	if (!u->rundir_wait)
		manager_start(&u->mgr);
}

/* A removal of a runtime dir ended: a user waiting for that path gets it
 * made afresh, and its manager. */
static void user_rundir_removed(uid_t uid, const char *path)
{
	struct user *u = user_find(uid);
	if (!u || !u->rundir_wait)
		return;
	u->rundir_wait = false;
	char err[PROTO_TEXT_SIZE];
	if (user_make_rundir(u, err, sizeof(err)) < 0) {
		log_err("the manager of %s is not started: %s", u->acct.name, err);
		user_release_waiters(u, SESSION_WAIT_FAILED, err);
		return;
	}
	if (!u->rundir_wait && (u->nmanager_sessions || user_lingers(u)))
		manager_start(&u->mgr);
}

int user_set_linger(const char *arg, bool on, char *err, size_t errlen)
{
	const struct config *cfg = config;
	struct passwd pwbuf, *pw = NULL;
	char buf[4096];
	resolve_user(arg, &pwbuf, buf, sizeof(buf), &pw);
	if (!pw) {
		snprintf(err, errlen, "no such user: '%.64s'", arg);
		return ENOENT;
	}
	if (pw->pw_uid == 0 && !cfg->root_session) {
		snprintf(err, errlen, "root gets no manager (root_session = no)");
		return EINVAL;
	}
	if (linger_set(pw->pw_name, on, err, errlen) < 0)
		return EIO;
	struct user *u = user_find(pw->pw_uid);
	if (on) {
		if (!u && !(u = user_create(pw))) {
			snprintf(err, errlen, "out of memory");
			return ENOMEM;
		}
		u->linger = true;
		log_info("enable-linger %s", u->acct.name);
		if (cfg->linger == CONFIG_LINGER_NO) {
			snprintf(err, errlen, "%s marked as lingering, but linger = no in the config: "
				"no effect until it is maybe or yes", u->acct.name);
			user_release_if_idle(u);
			return 0;
		}
		user_linger_start(u);
		snprintf(err, errlen, "%s lingers: its manager runs without sessions", pw->pw_name);
		return 0;
	}
	log_info("disable-linger %s", pw->pw_name);
	snprintf(err, errlen, "%s no longer lingers", pw->pw_name);
	if (u) {
		u->linger = false;
		if (!u->nmanager_sessions && !user_lingers(u)) {
			timer_disarm(&u->stop_delay);
			manager_stop(&u->mgr);
		}
	}
	return 0;
}

static void linger_start_one(const char *name, void *data)
{
	struct passwd pwbuf, *pw = NULL;
	char buf[4096];
	getpwnam_r(name, &pwbuf, buf, sizeof(buf), &pw);
	if (!pw) {
		log_warn("linger mark for unknown user '%s' ignored", name);
		return;
	}
	if (pw->pw_uid == 0 && !config->root_session)
		return;
	struct user *u = user_find(pw->pw_uid);
	if (!u && !(u = user_create(pw)))
		return;
	u->linger = true;
	log_info("starting the manager of lingering user %s", u->acct.name);
	user_linger_start(u);
}

void users_start_lingering(void)
{
	if (config->linger != CONFIG_LINGER_NO)
		linger_foreach(linger_start_one, NULL);
}

static void restore_user(const struct state_user *su, void *data)
{
	struct passwd pwbuf, *pw = NULL;
	char buf[4096];
	getpwuid_r(su->uid, &pwbuf, buf, sizeof(buf), &pw);
	if (!pw) {
		log_warn("state of uid %u ignored: no such user any more", (unsigned)su->uid);
		state_drop_user(su->uid);
		return;
	}
	struct user *u = user_find(su->uid);
	if (!u && !(u = user_create(pw)))
		return;
	user_set_str(&u->acct.rundir, su->rundir);
	u->rundir_managed = su->rundir_managed;
	if (su->manager_pid > 0)
		userenv_restore(su->uid);
	u->mgr.restarts = su->restarts;
	if (su->manager_pid > 0) {
		struct manager_record rec = {
			.pid = su->manager_pid, .start = su->manager_start,
			.stop_signal = su->stop_signal, .backend = su->backend,
			.starting = su->starting, .waiter_pid = su->waiter_pid,
			.waiter_start = su->waiter_start, .ready_fd = -1, .ready_keep_fd = -1,
			.keeper = su->keeper,
		};
		handover_take_ready(data, su->uid, &rec.ready_fd, &rec.ready_keep_fd);
		manager_adopt(&u->mgr, &rec);
		if (rec.ready_fd >= 0) { /* not taken */
			close(rec.ready_fd);
			close(rec.ready_keep_fd);
		}
	}
}

static void restore_session(const struct state_session *ss, void *data)
{
	uint64_t *max_id = data;
	if (ss->id > *max_id)
		*max_id = ss->id;
	struct user *u = user_find(ss->uid);
	if (!u) {
		struct passwd pwbuf, *pw = NULL;
		char buf[4096];
		getpwuid_r(ss->uid, &pwbuf, buf, sizeof(buf), &pw);
		if (pw)
			u = user_create(pw);
	}
	struct login *l = NULL;
	if (!u || !proc_is(ss->pid, ss->pid_start) || !(l = login_get(ss->pid)) ||
		login_start_time(l) != ss->pid_start) { /* gone, or went between the two looks */
		if (l && !l->sessions)
			login_free(l);
		log_info("session %llu ended while the daemon was away", (unsigned long long)ss->id);
		state_drop_session(ss->id);
		return;
	}
	struct session *s = session_new(ss->service, ss->tty, ss->rhost);
	if (!s || hmap_insert(&sessions, &s->node, ss->id) < 0) {
		free(s);
		if (!l->sessions)
			login_free(l);
		return;
	}
	s->id = ss->id;
	s->user = u;
	s->flags = ss->flags;
	s->since = ss->since;
	s->saved = true;
	s->export_rundir = ss->export_rundir;
	/* Records of older daemons have no context: a user session. */
	bool ctx_ok = proto_token_valid(ss->session_class) && proto_token_valid(ss->session_type) &&
		proto_token_valid(ss->seat) && ss->vtnr <= PROTO_VTNR_MAX;
	proto_strlcpy(s->session_class, ctx_ok && ss->session_class[0] ? ss->session_class : "user",
		sizeof(s->session_class));
	if (ctx_ok) {
		proto_strlcpy(s->session_type, ss->session_type, sizeof(s->session_type));
		proto_strlcpy(s->seat, ss->seat, sizeof(s->seat));
		s->vtnr = ss->vtnr;
	}
	s->has_manager = ss->has_manager >= 0 ? ss->has_manager != 0
		: config_class_has_manager(config, s->session_class);
	login_link(l, s);
	session_link(u, s);
	log_info("session %llu of %s (pid %d) taken over", (unsigned long long)s->id, u->acct.name,
		(int)l->pid);
}

void users_restore(struct handover *h)
{
	uint64_t max_id = 0;
	state_foreach_user(restore_user, h);
	state_foreach_session(restore_session, &max_id);
	if (max_id >= next_session_id)
		next_session_id = max_id + 1;
	/* Now decide each user's fate as if its last event had just happened. */
	size_t i;
	struct hmap_node *n = hmap_first(&users, &i);
	while (n) {
		struct hmap_node *next = hmap_next(&users, n, &i);
		struct user *u = container_of(n, struct user, node);
		if (u->nmanager_sessions)
			manager_start(&u->mgr); /* no-op when adopted running */
		else
			user_sessions_gone(u);
		n = next;
	}
}

void users_handover(struct handover *h)
{
	records_flush(); /* what the next image reads */
	size_t i;
	for (struct hmap_node *n = hmap_first(&users, &i); n; n = hmap_next(&users, n, &i))
		manager_handover(&container_of(n, struct user, node)->mgr, h);
}
