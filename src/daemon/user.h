/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Users and sessions: who is logged in, which sessions each user has, and
 * when each user's manager must run. Users by uid and sessions by id live in
 * hash tables; every lookup on the login path is O(1).
 *
 * A user object exists while it has a session, a manager that is not
 * STOPPED, or a linger mark; a FAILED user stays visible until its next login
 * or until stopped with stop-user. It is released in one place
 * (user_release_if_idle): unlinked from everything at once, its memory freed
 * only after the current dispatch (users_collect, the way the poller frees
 * its sources), so a caller never holds a freed user.
 *
 * A session's record in state_dir is written, and a closed one's removed,
 * after the dispatch too (users_collect), once the login has its answer: a
 * daemon killed in between loses the session, as one killed just before the
 * answer would, and the login does not wait for state_dir. So is a user's
 * (once per dispatch, however often its manager changed state in it).
 */
#ifndef DUS_USER_H
#define DUS_USER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "hmap.h"
#include "poller.h"
#include "proto.h"
#include "supervisor.h"

struct session;

/* How a login's wait for its session's manager ended. */
enum session_wait_result {
	SESSION_WAIT_READY,   /* the manager is ready */
	SESSION_WAIT_FAILED,  /* it failed or was stopped, or the session closed: why says */
	SESSION_WAIT_EXPIRED, /* login_timeout and a grace passed: the login gave up long ago */
};

/* A login waiting for its session's manager to be ready: embedded in its
 * owner (the server's client), attached to at most one session. The owner
 * sets release; the rest is user.c's. */
struct session_waiter {
	struct session *session; /* the session it waits on, or NULL */
	uint32_t timeout_ms;     /* how long the login waits (told to it in WAIT) */
	struct timer expiry;     /* then, after a grace, SESSION_WAIT_EXPIRED */
	/* The answer, exactly once per wait. Detached already when called. */
	void (*release)(struct session_waiter *w, struct session *s,
		enum session_wait_result result, const char *why);
};

struct session {
	struct hmap_node node; /* sessions by id */
	struct session *prev, *next; /* the user's sessions */
	struct user *user;
	uint64_t id;
	/* Into strings[] (a session is allocated with what they need, not
	 * with room for the longest: ~0.3 KiB each instead of ~0.7). */
	const char *service, *tty, *rhost;
	uint32_t flags;
	struct login *login; /* the process that opened the session */
	struct session *login_prev, *login_next; /* the sessions it opened */
	time_t since;
	bool export_rundir;     /* this login gets our XDG_RUNTIME_DIR */
	struct session_waiter *waiter; /* the login waiting for readiness, or NULL */
	/* Session context (class never ""): a class outside manager_classes is
	 * tracked and listed, but neither starts nor keeps the manager. */
	char session_class[PROTO_TOKEN_SIZE];
	char session_type[PROTO_TOKEN_SIZE];
	char seat[PROTO_TOKEN_SIZE];
	uint32_t vtnr;
	bool has_manager;       /* decided at open: counts in nmanager_sessions */
	bool saved;             /* its record is in state_dir */
	char strings[];         /* service, tty, rhost: each NUL-terminated */
};

/* A process that opened sessions, watched through one pidfd however many it
 * opened: the daemon's fds bound the login processes, not the sessions. */
struct login {
	struct hmap_node node; /* logins by pid, while the pid is this process's */
	bool listed;           /* in the map (not once its pid is seen reused) */
	pid_t pid;
	uint64_t start;        /* its start time: a reused pid is not this login */
	int pidfd;
	struct poller_fd *src;
	struct session *sessions;
};

struct user {
	struct hmap_node node; /* users by uid */
	struct hmap_node name_node; /* users by hash of the name */
	uid_t uid;
	gid_t gid;
	/* Its name, home, shell and rundir (the manager's XDG_RUNTIME_DIR, ""
	 * if none): strings of the user's own, set with user_set_str only; its
	 * manager keeps a pointer to acct. */
	struct account acct;
	bool rundir_managed;          /* we created it: remove it after the stop */
	bool rundir_wait;             /* ours is still being removed: the manager starts once it is gone */
	struct session *sessions;
	unsigned nsessions;
	unsigned nmanager_sessions;   /* those of them whose class has a manager */
	bool linger;                  /* has a mark in linger_dir */
	struct timer stop_delay;
	struct manager mgr;
	struct user *released_next; /* released: freed after the dispatch (users_collect) */
	bool unsaved;               /* its record is to be written after the dispatch */
	struct user *unsaved_next;
};

/* cfg: the daemon's config (valid and current across reloads); also
 * initialises linger and rundir_cleanup, which only users use. */
int users_init(const struct config *cfg);
void users_finish(void);
/* After each dispatch (main.c): write the records of the users changed and
 * the sessions opened during it, remove those of the sessions closed, then
 * free the users released. */
void users_collect(void);

struct user *user_find(uid_t uid);
/* Look a user up by name or decimal uid among the known users. */
struct user *user_find_by_arg(const char *arg);
struct session *session_find(uint64_t id);

/* What became of a login's OPEN_SESSION (session_open). */
enum session_outcome {
	SESSION_REFUSED,   /* no session: err says why */
	SESSION_UNTRACKED, /* a login this daemon does not track (root without root_session) */
	SESSION_READY,     /* the login goes on at once */
	SESSION_WAITING,   /* w is attached: the login waits up to w->timeout_ms */
	SESSION_FAILED,    /* tracked (the module closes it) but its manager failed: err */
};

/*
 * Open a session for the OPEN_SESSION request req from process pid. *out is
 * the session (NULL when REFUSED or UNTRACKED). This is where the login-wait
 * policy lives: a login waits (w attached to the session, w->timeout_ms =
 * login_timeout) while the manager starts, unless login_timeout is 0, and is
 * released through w->release when the manager is ready or is not, or with
 * SESSION_WAIT_EXPIRED a grace after the login itself gave up.
 */
enum session_outcome session_open(const struct proto_open_session *req, pid_t pid,
	struct session_waiter *w, struct session **out, char *err, size_t errlen);
/* End a session. May release its user (see above). */
void session_close(struct session *s, const char *why);

/* Fill reply fields (rundir, dbus address) for a session. */
void session_fill_reply(const struct session *s, struct proto_open_reply *reply);

/* Iteration over everything, for listing. */
void users_foreach(void (*fn)(struct user *u, void *data), void *data);
void sessions_foreach(void (*fn)(struct session *s, void *data), void *data);

void user_fill_info(const struct user *u, struct proto_user_info *info);
void session_fill_info(const struct session *s, struct proto_session_info *info);

/* Control. Each returns 0 or a positive errno with a message in err. */
int user_stop(struct user *u, char *err, size_t errlen);
int user_restart(struct user *u, char *err, size_t errlen);

/* Whether the CLI argument arg (a name or decimal uid) names uid. */
bool user_arg_is(const char *arg, uid_t uid);

/* terminate-session: signal the session's login process and end the session. */
void session_terminate(struct session *s, uid_t by);

/* enable-linger (on) / disable-linger: 0 or a positive errno; err says what happened. */
int user_set_linger(const char *arg, bool on, char *err, size_t errlen);
/* Start the managers of users with a linger mark (daemon start). */
void users_start_lingering(void);

/* Stop every manager (daemon shutdown). */
void users_stop_all(void);

/* Record u (and its manager) in the state dir: once, after the dispatch,
 * however many times it changed during it. */
void user_save(struct user *u);
struct handover;
/* Take over what a previous daemon left in the state dir (and, after a
 * reexec, the fds it handed over). */
void users_restore(struct handover *h);
/* Before a reexec: hand over every starting manager's readiness fds. */
void users_handover(struct handover *h);

/* Attach w to s again (a login that waited across a reexec; neither is
 * attached): answered at once if the manager is already ready or down. */
void session_rewait(struct session *s, struct session_waiter *w);
/* Detach w from its session without an answer (its login is gone). */
void session_unwait(struct session_waiter *w);

#endif
