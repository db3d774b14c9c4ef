/* SPDX-License-Identifier: BSD-2-Clause */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "hmap.h"
#include "log.h"
#include "mkdirs.h"
#include "poller.h"
#include "proto.h"
#include "state.h"
#include "supervisor.h"
#include "user.h"
#include "userenv.h"

#define REQUEST_DEADLINE_MS 5000      /* a client must send its request within */
#define OUTQ_MAX_BYTES (8u << 20)     /* a client that reads nothing is dropped */
#define ROOT_CONNECTIONS_MAX 4096     /* root is exempt from max_connections, not unbounded */
#define REFUSED_LOG_BURST 5           /* refused requests logged per uid and window */
#define REFUSED_LOG_WINDOW_MS 10000   /* then one "suppressed N" line at the window's end */

struct packet {
	struct packet *next;
	size_t len;
	unsigned char data[];
};

struct client {
	int fd;
	struct poller_fd *src;
	uid_t uid;
	pid_t pid;
	struct timer deadline;
	struct packet *out_head, *out_tail;
	size_t out_bytes;
	uint32_t events;         /* what c->src is registered for */
	struct session_waiter wait; /* wait.session: the session whose readiness this login awaits */
	struct userenv_job *env_job; /* a setenv/unsetenv being applied, or NULL */
	bool closing;            /* drop once the output queue is flushed */
	bool busy;               /* a handler of its request runs: not freed now */
	bool dead;               /* destroy once that handler has returned */
	struct client *prev, *next;
};

/* Connections per uid, to bound what one unprivileged user can hold. */
struct uid_count {
	struct hmap_node node;
	unsigned count;
};

/* Refused requests of one uid in the current window: what was logged of them. */
struct refusal_log {
	struct hmap_node node;
	uid_t uid;
	unsigned logged, suppressed;
	struct timer window;
};

static const struct config *config; /* the daemon's: valid and current across reloads */
static const struct server_hooks *hooks;
static int listen_fd = -1;
static struct poller_fd *listen_src;
static int reserve_fd = -1; /* given up to accept-and-drop when fds run out */
static struct client *clients;
static unsigned nclients_user, nclients_root;
static struct hmap uid_counts;
static struct hmap refusal_logs; /* struct refusal_log by uid */
static char bound_path[PROTO_PATH_SIZE];
static bool reexec_pending;          /* asked for; main.c carries it out */
static struct client *reexec_client; /* who asked, answered by the outcome */

static void client_destroy(struct client *c);
static void client_drop(struct client *c);
static struct client *client_add(int fd);
static void client_wait_release(struct session_waiter *w, struct session *s,
	enum session_wait_result result, const char *message);

static unsigned *uid_count_ref(uid_t uid, bool create)
{
	struct hmap_node *n = hmap_find(&uid_counts, uid);
	if (n)
		return &container_of(n, struct uid_count, node)->count;
	if (!create)
		return NULL;
	struct uid_count *uc = calloc(1, sizeof(*uc));
	if (!uc || hmap_insert(&uid_counts, &uc->node, uid) < 0) {
		free(uc);
		return NULL;
	}
	return &uc->count;
}

static void uid_count_drop(uid_t uid)
{
	struct hmap_node *n = hmap_find(&uid_counts, uid);
	if (!n)
		return;
	struct uid_count *uc = container_of(n, struct uid_count, node);
	if (--uc->count == 0) {
		hmap_remove(&uid_counts, n);
		free(uc);
	}
}

static void client_update_events(struct client *c)
{
	/* Backpressure: the next request is read only once every reply to
	 * the last one has left, so a client that reads nothing holds one
	 * request's replies, not an unbounded queue. */
	uint32_t ev = c->out_head ? EPOLLOUT : EPOLLIN;
	if (c->closing)
		ev &= ~(uint32_t)EPOLLIN;
	if (ev != c->events && poller_mod_fd(c->src, ev) == 0)
		c->events = ev;
}

/* Write queued packets until the socket would block. -1: client is dead. */
static int client_flush(struct client *c)
{
	while (c->out_head) {
		struct packet *p = c->out_head;
		ssize_t n = send(c->fd, p->data, p->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
		c->out_head = p->next;
		if (!c->out_head)
			c->out_tail = NULL;
		c->out_bytes -= p->len;
		free(p);
	}
	if (!c->out_head && c->closing)
		return -1;
	client_update_events(c);
	return 0;
}

/* Queue one message; it is sent as soon as the socket takes it. */
static int client_send(struct client *c, const struct proto_msg *msg)
{
	unsigned char buf[PROTO_MSG_MAX];
	ssize_t len = proto_encode(msg, buf, sizeof(buf));
	if (len < 0) {
		log_err("cannot encode %s reply", proto_type_name(msg->type));
		return -1;
	}
	if (c->out_bytes + (size_t)len > OUTQ_MAX_BYTES) {
		log_warn("client pid %d uid %u reads nothing: dropped", (int)c->pid, (unsigned)c->uid);
		return -1;
	}
	struct packet *p = malloc(sizeof(*p) + (size_t)len);
	if (!p)
		return -1;
	p->next = NULL;
	p->len = (size_t)len;
	memcpy(p->data, buf, (size_t)len);
	if (c->out_tail)
		c->out_tail->next = p;
	else
		c->out_head = p;
	c->out_tail = p;
	c->out_bytes += (size_t)len;
	return 0;
}

static int client_send_result(struct client *c, int code, const char *message)
{
	struct proto_msg m = {.type = PROTO_RESULT};
	m.u.result.code = code;
	proto_strlcpy(m.u.result.message, message, sizeof(m.u.result.message));
	return client_send(c, &m);
}

struct list_ctx {
	struct client *c;
	int err;
};

static void list_one_user(struct user *u, void *data)
{
	struct list_ctx *ctx = data;
	struct proto_msg m = {.type = PROTO_USER_INFO};
	user_fill_info(u, &m.u.user);
	if (!ctx->err && client_send(ctx->c, &m) < 0)
		ctx->err = -1;
}

static void list_one_session(struct session *s, void *data)
{
	struct list_ctx *ctx = data;
	struct proto_msg m = {.type = PROTO_SESSION_INFO};
	session_fill_info(s, &m.u.session);
	if (!ctx->err && client_send(ctx->c, &m) < 0)
		ctx->err = -1;
}

static int send_end(struct client *c)
{
	struct proto_msg m = {.type = PROTO_END};
	return client_send(c, &m);
}

static void refusal_window_end(struct timer *t, void *data)
{
	struct refusal_log *r = data;
	if (r->suppressed)
		log_warn("uid %u: suppressed %u more refused request%s (at most %u logged per %u s)",
			(unsigned)r->uid, r->suppressed, r->suppressed == 1 ? "" : "s",
			REFUSED_LOG_BURST, REFUSED_LOG_WINDOW_MS / 1000);
	hmap_remove(&refusal_logs, &r->node);
	free(r);
}

/* Whether a refused request of uid may be logged: a few per window, then
 * they are counted, and the count is logged at the window's end. */
static bool refusal_log_allowed(uid_t uid)
{
	struct hmap_node *n = hmap_find(&refusal_logs, uid);
	struct refusal_log *r = n ? container_of(n, struct refusal_log, node) : NULL;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r || hmap_insert(&refusal_logs, &r->node, uid) < 0) {
			free(r);
			return false; /* out of memory: not logged */
		}
		r->uid = uid;
		timer_init(&r->window, refusal_window_end, r);
		if (timer_arm(&r->window, REFUSED_LOG_WINDOW_MS) < 0) {
			hmap_remove(&refusal_logs, &r->node);
			free(r);
			return false;
		}
	}
	if (r->logged < REFUSED_LOG_BURST) {
		r->logged++;
		return true;
	}
	r->suppressed++;
	return false;
}

/*
 * Refuse a request of an unprivileged client: EPERM, and the connection is
 * dropped once the answer has left (no second try on it). The warning says
 * what was tried (at most 64 bytes of the client's text), rate-limited per
 * uid, so that no user can flood the daemon's log.
 */
static int client_refuse(struct client *c, const char *what, const char *message)
{
	if (refusal_log_allowed(c->uid))
		log_warn("uid %u (pid %d) tried to %.100s: refused", (unsigned)c->uid, (int)c->pid,
			what);
	c->closing = true;
	return client_send_result(c, EPERM, message);
}

static int handle_open(struct client *c, const struct proto_open_session *req)
{
	if (c->uid != 0) {
		char what[128];
		snprintf(what, sizeof(what), "open a session for '%.64s'", req->user);
		return client_refuse(c, what, "permission denied: only root may open sessions");
	}
	if (c->wait.session)
		return client_send_result(c, EBUSY, "this connection already waits for a session");
	if (supervisor_owns(c->pid)) {
		/* A manager's own PAM session (the module in its stack): it would
		 * wait for the very manager it is part of. */
		log_warn("pid %d, a manager or its PAM session, tried to open a session for '%s': "
			"refused", (int)c->pid, req->user);
		return client_send_result(c, EPERM, "a manager's own PAM session is not a login");
	}
	char err[PROTO_TEXT_SIZE] = "";
	struct proto_msg m = {.type = PROTO_OPEN_REPLY};
	struct proto_open_reply *rep = &m.u.open_reply;
	struct session *s = NULL;
	enum session_outcome o = session_open(req, c->pid, &c->wait, &s, err, sizeof(err));
	if (s) /* tracked: the module closes it, whatever the outcome */
		session_fill_reply(s, rep);
	switch (o) {
	case SESSION_UNTRACKED: /* nothing to wait for, nothing to close */
	case SESSION_READY:
		rep->status = PROTO_OPEN_READY;
		break;
	case SESSION_WAITING: /* answered by client_wait_release */
		rep->status = PROTO_OPEN_WAIT;
		rep->timeout_ms = c->wait.timeout_ms;
		rep->dbus_address[0] = '\0'; /* only once ready */
		timer_disarm(&c->deadline); /* the wait has its own (user.c) */
		break;
	case SESSION_REFUSED:
	case SESSION_FAILED:
		rep->status = PROTO_OPEN_FAILED;
		rep->dbus_address[0] = '\0';
		proto_strlcpy(rep->message, err, sizeof(rep->message));
		break;
	}
	return client_send(c, &m);
}

static int handle_close(struct client *c, const struct proto_close_session *req)
{
	if (c->uid != 0)
		return client_refuse(c, "close a session",
			"permission denied: only root may close sessions");
	struct session *s = session_find(req->session_id);
	if (!s)
		return client_send_result(c, ENOENT, "no such session");
	session_close(s, "closed by the PAM module");
	return client_send_result(c, 0, "session closed");
}

static int handle_status(struct client *c, const struct proto_status *req)
{
	struct user *u = user_find_by_arg(req->user);
	if (!u) {
		char msg[PROTO_TEXT_SIZE];
		snprintf(msg, sizeof(msg), "user '%.64s' has no sessions and no manager", req->user);
		return client_send_result(c, ENOENT, msg);
	}
	struct proto_msg m = {.type = PROTO_USER_INFO};
	user_fill_info(u, &m.u.user);
	if (client_send(c, &m) < 0)
		return -1;
	struct list_ctx ctx = {.c = c};
	for (struct session *s = u->sessions; s; s = s->next)
		list_one_session(s, &ctx);
	return ctx.err ? -1 : send_end(c);
}

/*
 * Self-service: which CONTROL requests a non-root client may make. Its own
 * manager's stop and restart; its own linger when user_linger = yes.
 * Everything else needs root.
 */
static bool control_allowed(const struct client *c, const struct proto_control *req)
{
	if (c->uid == 0)
		return true;
	switch (req->op) {
	case PROTO_CTL_STOP_USER:
	case PROTO_CTL_RESTART_USER:
		return user_arg_is(req->user, c->uid);
	case PROTO_CTL_ENABLE_LINGER:
	case PROTO_CTL_DISABLE_LINGER:
		return config->user_linger && user_arg_is(req->user, c->uid);
	default:
		return false;
	}
}

static int handle_terminate(struct client *c, const struct proto_terminate *req)
{
	struct session *s = session_find(req->session_id);
	if (!s)
		return client_send_result(c, ENOENT, "no such session");
	if (c->uid != 0 && s->user->uid != c->uid)
		return client_refuse(c, "terminate another user's session",
			"permission denied: only root or the session's own user may terminate it");
	session_terminate(s, c->uid);
	return client_send_result(c, 0, "session terminated");
}

static int handle_control(struct client *c, const struct proto_control *req)
{
	if (!control_allowed(c, req))
		return client_refuse(c, "change state (control request)",
			"permission denied: changing state needs root (a user may only stop or "
			"restart their own manager)");
	char err[PROTO_TEXT_SIZE] = "";
	int code = 0;
	switch (req->op) {
	case PROTO_CTL_RELOAD:
		if (hooks->reload(err, sizeof(err)) < 0)
			return client_send_result(c, EINVAL, err);
		return client_send_result(c, 0, "configuration reloaded");
	case PROTO_CTL_ENABLE_LINGER:
	case PROTO_CTL_DISABLE_LINGER:
		code = user_set_linger(req->user, req->op == PROTO_CTL_ENABLE_LINGER, err, sizeof(err));
		return client_send_result(c, code, err);
	case PROTO_CTL_REEXEC:
		if (hooks->reexec_check(err, sizeof(err)) < 0)
			return client_send_result(c, ENOEXEC, err);
		if (reexec_pending)
			return client_send_result(c, EBUSY, "a reexec is already under way");
		/* Never from inside a handler: main.c execs once dispatch has
		 * returned (server_reexec_pending). The answer tells the outcome:
		 * the new image gives it, or this one if the exec failed. */
		reexec_pending = true;
		reexec_client = c;
		return 0;
	case PROTO_CTL_STOP_USER:
	case PROTO_CTL_RESTART_USER: {
		struct user *u = user_find_by_arg(req->user);
		if (!u) {
			snprintf(err, sizeof(err), "user '%.64s' has no sessions and no manager", req->user);
			return client_send_result(c, ENOENT, err);
		}
		if (req->op == PROTO_CTL_STOP_USER)
			code = user_stop(u, err, sizeof(err));
		else
			code = user_restart(u, err, sizeof(err));
		return client_send_result(c, code, err);
	}
	default:
		return client_send_result(c, ENOSYS, "not supported by this daemon yet");
	}
}

/* The change reached the user's manager (or could not): answer the client. */
static void env_applied(void *data, bool ok, const char *message)
{
	struct client *c = data;
	char msg[PROTO_TEXT_SIZE];
	c->env_job = NULL;
	if (ok)
		snprintf(msg, sizeof(msg), "environment changed");
	else
		snprintf(msg, sizeof(msg), "stored, but not applied to the running manager: %.180s",
			message);
	timer_arm(&c->deadline, REQUEST_DEADLINE_MS);
	if (client_send_result(c, ok ? 0 : EIO, msg) < 0 || client_flush(c) < 0)
		client_drop(c);
}

struct env_list_ctx {
	struct client *c;
	struct proto_msg m;
	size_t used;
	int err;
};

static void env_list_one(const char *var, void *data)
{
	struct env_list_ctx *ctx = data;
	if (ctx->err)
		return;
	if (proto_env_append(&ctx->m.u.env, &ctx->used, var) == 0)
		return;
	if (client_send(ctx->c, &ctx->m) < 0) {
		ctx->err = -1;
		return;
	}
	ctx->m.u.env.count = 0;
	ctx->used = 0;
	if (proto_env_append(&ctx->m.u.env, &ctx->used, var) < 0)
		ctx->err = -1; /* cannot happen: one variable always fits */
}

/*
 * setenv, unsetenv, show-environment: root for anyone, a user for
 * themselves. The user must have a manager (starting, ready, restarting):
 * its environment lives as long as it does.
 */
static int handle_env(struct client *c, const struct proto_env *req)
{
	char err[PROTO_TEXT_SIZE] = "";
	struct user *u = req->user[0] ? user_find_by_arg(req->user) : user_find(c->uid);
	if (c->uid != 0 && ((req->user[0] && !user_arg_is(req->user, c->uid)) ||
			    (u && u->uid != c->uid)))
		return client_refuse(c, "change another user's environment",
			"permission denied: a user may only change their own manager's environment");
	if (!u || u->mgr.state == MANAGER_STOPPED || u->mgr.state == MANAGER_FAILED ||
		u->mgr.state == MANAGER_STOPPING) {
		snprintf(err, sizeof(err), "%.64s has no running service manager",
			u ? u->acct.name : req->user[0] ? req->user : "the caller");
		return client_send_result(c, ENOENT, err);
	}
	if (req->op == PROTO_ENV_SHOW) {
		struct env_list_ctx *ctx = calloc(1, sizeof(*ctx));
		if (!ctx)
			return -1;
		ctx->c = c;
		ctx->m.type = PROTO_ENV;
		ctx->m.u.env.op = PROTO_ENV_LIST;
		userenv_foreach(u->uid, env_list_one, ctx);
		int r = ctx->err;
		if (!r && ctx->m.u.env.count)
			r = client_send(c, &ctx->m);
		free(ctx);
		return r < 0 ? -1 : send_end(c);
	}
	if (req->op != PROTO_ENV_SET && req->op != PROTO_ENV_UNSET)
		return client_send_result(c, EPROTO, "unexpected request");
	if (c->env_job)
		return client_send_result(c, EBUSY, "a change is still being applied");
	bool running = u->mgr.state == MANAGER_STARTING || u->mgr.state == MANAGER_READY;
	int code = userenv_change(u->mgr.acct, u->mgr.backend, running, req, env_applied, c,
		&c->env_job, err, sizeof(err));
	if (code || !c->env_job)
		return client_send_result(c, code, code ? err : "environment changed");
	return 0; /* answered by env_applied */
}

static int client_handle(struct client *c, const struct proto_msg *msg)
{
	struct list_ctx ctx = {.c = c};
	switch (msg->type) {
	case PROTO_OPEN_SESSION:
		return handle_open(c, &msg->u.open);
	case PROTO_CLOSE_SESSION:
		return handle_close(c, &msg->u.close);
	case PROTO_LIST_USERS:
		users_foreach(list_one_user, &ctx);
		return ctx.err ? -1 : send_end(c);
	case PROTO_LIST_SESSIONS:
		sessions_foreach(list_one_session, &ctx);
		return ctx.err ? -1 : send_end(c);
	case PROTO_STATUS:
		return handle_status(c, &msg->u.status);
	case PROTO_CONTROL:
		return handle_control(c, &msg->u.control);
	case PROTO_TERMINATE:
		return handle_terminate(c, &msg->u.terminate);
	case PROTO_ENV:
		return handle_env(c, &msg->u.env);
	default:
		return client_send_result(c, EPROTO, "unexpected message type");
	}
}

static void client_read(struct client *c)
{
	unsigned char buf[PROTO_MSG_MAX + 1];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		client_destroy(c);
		return;
	}
	if (n == 0) { /* peer closed (or sent an empty packet, equally invalid) */
		client_destroy(c);
		return;
	}
	struct proto_msg msg;
	if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > PROTO_MSG_MAX ||
		proto_decode(buf, (size_t)n, &msg) < 0) {
		log_debug("malformed packet (%zd bytes) from pid %d uid %u: dropping the connection",
			n, (int)c->pid, (unsigned)c->uid);
		client_send_result(c, EPROTO, "malformed request");
		c->closing = true;
		if (client_flush(c) < 0)
			client_destroy(c);
		return;
	}
	/* The handler may end a session this client waits for, or stop its
	 * user, and so reach session_release_waiter for c itself: c must
	 * outlive it (client_drop only marks it meanwhile). */
	c->busy = true;
	int r = client_handle(c, &msg);
	c->busy = false;
	if (r < 0 || c->dead) {
		client_destroy(c);
		return;
	}
	if (!c->wait.session)
		timer_arm(&c->deadline, REQUEST_DEADLINE_MS);
	if (client_flush(c) < 0)
		client_destroy(c);
}

static void client_event(int fd, uint32_t events, void *data)
{
	struct client *c = data;
	if (events & EPOLLOUT) {
		if (client_flush(c) < 0) {
			client_destroy(c);
			return;
		}
	}
	if (events & EPOLLIN) {
		client_read(c);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR))
		client_destroy(c);
}

static void client_expired(struct timer *t, void *data)
{
	struct client *c = data;
	log_debug("client pid %d uid %u: deadline passed, closing", (int)c->pid, (unsigned)c->uid);
	client_destroy(c);
}

/* Destroy c, or, while a handler of its request still uses it, mark it to be
 * destroyed as soon as that handler returns. What can run inside a handler
 * (client_wait_release) drops clients only through here. */
static void client_drop(struct client *c)
{
	if (c->busy)
		c->dead = true;
	else
		client_destroy(c);
}

static void client_destroy(struct client *c)
{
	session_unwait(&c->wait);
	if (c == reexec_client)
		reexec_client = NULL;
	if (c->env_job)
		userenv_cancel(c->env_job);
	timer_disarm(&c->deadline);
	poller_remove_fd(c->src);
	close(c->fd);
	while (c->out_head) {
		struct packet *p = c->out_head;
		c->out_head = p->next;
		free(p);
	}
	if (c->uid == 0) {
		nclients_root--;
	} else {
		nclients_user--;
		uid_count_drop(c->uid);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

/* Whether one more connection from uid fits the limits; counts it if so. */
static bool connection_admit(uid_t uid)
{
	const struct config *cfg = config;
	if (uid == 0) {
		if (nclients_root >= ROOT_CONNECTIONS_MAX)
			return false;
		nclients_root++;
		return true;
	}
	if (nclients_user >= cfg->max_connections)
		return false;
	unsigned *count = uid_count_ref(uid, true);
	if (!count || *count >= cfg->max_connections_per_uid) {
		if (count && *count == 0)
			uid_count_drop(uid);
		return false;
	}
	(*count)++;
	nclients_user++;
	return true;
}

/* Accept and admit or drop one connection, and read its request if it is there. */
static void accept_one(void)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE) {
			/* Out of fds: free the reserve to accept and drop the
			 * connection, so the listen socket does not stay readable
			 * (a busy loop) while nothing can be served. */
			log_warn("out of file descriptors: dropping a connection");
			if (reserve_fd >= 0) {
				close(reserve_fd);
				int drop = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
				if (drop >= 0)
					close(drop);
				reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			}
			return;
		}
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_err("accept4: %s", strerror(errno));
		return;
	}
	struct client *c = client_add(fd);
	/* The module sends its request right after connect(), so it is most
	 * often here already: reading it now saves the epoll_wait that would
	 * report it. If not, this read finds nothing and epoll reports it. */
	if (c)
		client_read(c);
}

/* Make a client of a connected socket (fd is consumed). NULL if refused. */
static struct client *client_add(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_err("SO_PEERCRED: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (!connection_admit(cred.uid)) {
		log_debug("connection from uid %u pid %d refused: limit reached",
			(unsigned)cred.uid, (int)cred.pid);
		close(fd);
		return NULL;
	}
	struct client *c = calloc(1, sizeof(*c));
	if (c) {
		c->fd = fd;
		c->uid = cred.uid;
		c->pid = cred.pid;
		timer_init(&c->deadline, client_expired, c);
		c->wait.release = client_wait_release;
		c->src = poller_add_fd(fd, EPOLLIN, client_event, c);
		c->events = EPOLLIN;
	}
	if (!c || !c->src || timer_arm(&c->deadline, REQUEST_DEADLINE_MS) < 0) {
		if (c && c->src)
			poller_remove_fd(c->src);
		free(c);
		close(fd);
		if (cred.uid == 0) {
			nclients_root--;
		} else {
			nclients_user--;
			uid_count_drop(cred.uid);
		}
		return NULL;
	}
	c->next = clients;
	if (clients)
		clients->prev = c;
	clients = c;
	return c;
}

static void listen_event(int fd, uint32_t events, void *data)
{
	/* One connection per wakeup: the listen socket is level-triggered, so
	 * while more wait the next epoll_wait reports it again, together with
	 * everything else that is ready (nothing starves), and no accept4 is
	 * spent on learning that nothing is left (a warm login's connection
	 * comes alone). */
	accept_one();
}

int server_listen_fd(void)
{
	return listen_fd;
}

int server_init(const struct config *cfg, const struct server_hooks *hooks_, int inherited_fd)
{
	const char *socket_path = cfg->socket_path;
	config = cfg;
	hooks = hooks_;
	if (inherited_fd >= 0) {
		listen_fd = inherited_fd;
		if (fcntl(listen_fd, F_SETFD, FD_CLOEXEC) < 0 ||
			fcntl(listen_fd, F_SETFL, O_NONBLOCK) < 0) {
			log_err("inherited socket fd %d: %s", inherited_fd, strerror(errno));
			return -1;
		}
		proto_strlcpy(bound_path, socket_path, sizeof(bound_path));
		reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		listen_src = poller_add_fd(listen_fd, EPOLLIN, listen_event, NULL);
		return listen_src ? 0 : -1;
	}
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof(addr.sun_path)) {
		log_err("socket_path too long: %s", socket_path);
		return -1;
	}
	strcpy(addr.sun_path, socket_path);
	if (mkdirs_parents(socket_path) < 0) {
		log_err("cannot create the directory of %s: %s", socket_path, strerror(errno));
		return -1;
	}
	listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (listen_fd < 0) {
		log_err("socket: %s", strerror(errno));
		return -1;
	}
	if (unlink(socket_path) < 0 && errno != ENOENT) {
		log_err("unlink %s: %s", socket_path, strerror(errno));
		return -1;
	}
	/* Anyone may connect (reading state is open); what a peer may do is
	 * decided per request from SO_PEERCRED. */
	mode_t old = umask(0111);
	int r = bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old);
	if (r < 0) {
		log_err("bind %s: %s", socket_path, strerror(errno));
		return -1;
	}
	proto_strlcpy(bound_path, socket_path, sizeof(bound_path));
	if (listen(listen_fd, 128) < 0) {
		log_err("listen: %s", strerror(errno));
		return -1;
	}
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	listen_src = poller_add_fd(listen_fd, EPOLLIN, listen_event, NULL);
	return listen_src ? 0 : -1;
}

void server_finish(void)
{
	reexec_pending = false;
	while (clients)
		client_destroy(clients);
	if (listen_src)
		poller_remove_fd(listen_src);
	if (listen_fd >= 0)
		close(listen_fd);
	if (bound_path[0])
		unlink(bound_path);
	if (reserve_fd >= 0)
		close(reserve_fd);
	listen_fd = reserve_fd = -1;
	listen_src = NULL;
	size_t i;
	struct hmap_node *n = hmap_first(&uid_counts, &i);
	while (n) {
		struct hmap_node *next = hmap_next(&uid_counts, n, &i);
		hmap_remove(&uid_counts, n);
		free(container_of(n, struct uid_count, node));
		n = next;
	}
	hmap_free(&uid_counts);
	n = hmap_first(&refusal_logs, &i);
	while (n) {
		struct hmap_node *next = hmap_next(&refusal_logs, n, &i);
		struct refusal_log *r = container_of(n, struct refusal_log, node);
		timer_disarm(&r->window);
		hmap_remove(&refusal_logs, n);
		free(r);
		n = next;
	}
	hmap_free(&refusal_logs);
}

/* The answer to a login waiting for its manager (struct session_waiter). */
static void client_wait_release(struct session_waiter *w, struct session *s,
	enum session_wait_result result, const char *message)
{
	struct client *c = container_of(w, struct client, wait);
	if (result == SESSION_WAIT_EXPIRED) { /* the login went on without an answer */
		log_debug("client pid %d: %s, closing", (int)c->pid, message);
		client_drop(c);
		return;
	}
	bool ok = result == SESSION_WAIT_READY;
	struct proto_msg m = {.type = PROTO_OPEN_REPLY};
	session_fill_reply(s, &m.u.open_reply);
	m.u.open_reply.status = ok ? PROTO_OPEN_READY : PROTO_OPEN_FAILED;
	if (!ok)
		m.u.open_reply.dbus_address[0] = '\0';
	proto_strlcpy(m.u.open_reply.message, message ? message : "", sizeof(m.u.open_reply.message));
	timer_arm(&c->deadline, REQUEST_DEADLINE_MS);
	if (client_send(c, &m) < 0 || client_flush(c) < 0)
		client_drop(c);
}

void server_handover(struct handover *h)
{
	for (struct client *c = clients; c; c = c->next) {
		/* A half-sent reply cannot be resumed by the new image: such a
		 * client (rare: replies are small) just sees the connection end. */
		if (c->closing || client_flush(c) < 0 || c->out_head)
			continue;
		if (handover_add_client(h, c->fd, c->wait.session ? c->wait.session->id : 0,
			    c == reexec_client) == 0)
			fcntl(c->fd, F_SETFD, 0);
	}
}

void server_adopt_clients(struct handover *h)
{
	for (size_t i = 0; i < h->nclients; i++) {
		int fd = h->clients[i].fd;
		uint64_t id = h->clients[i].session;
		h->clients[i].fd = -1;
		fcntl(fd, F_SETFL, O_NONBLOCK);
		struct client *c = client_add(fd);
		if (c && h->clients[i].reexec) { /* it asked for this reexec: done */
			if (client_send_result(c, 0, "re-executed dinit-userservd") < 0 ||
				client_flush(c) < 0) {
				client_destroy(c);
				continue;
			}
		}
		if (!c || !id)
			continue;
		struct session *s = session_find(id);
		if (!s) {
			struct proto_msg m = {.type = PROTO_OPEN_REPLY};
			m.u.open_reply.status = PROTO_OPEN_FAILED;
			m.u.open_reply.session_id = id;
			proto_strlcpy(m.u.open_reply.message, "the session ended during a daemon reexec",
				sizeof(m.u.open_reply.message));
			if (client_send(c, &m) < 0 || client_flush(c) < 0)
				client_destroy(c);
			continue;
		}
		/* The login still waits: answer now, or when the manager is ready. */
		timer_disarm(&c->deadline);
		session_rewait(s, &c->wait);
	}
}

bool server_reexec_pending(void)
{
	return reexec_pending;
}

void server_reexec_failed(int code, const char *why)
{
	struct client *c = reexec_client;
	reexec_pending = false;
	reexec_client = NULL;
	if (c && (client_send_result(c, code, why) < 0 || client_flush(c) < 0))
		client_destroy(c);
}
