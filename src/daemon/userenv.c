/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Run-time manager environment; see userenv.h.
 *
 * Privilege boundary: the stored variables are root's (the state dir); the
 * running manager is the user's, so applying a change is always done by
 * userenv-apply running as the user, never by root connecting to the user's
 * dinit socket or writing into the user's runtime dir.
 */
#include "userenv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hmap.h"
#include "log.h"
#include "poller.h"

#ifndef DUS_LIBEXECDIR
#define DUS_LIBEXECDIR "/usr/local/libexec/dinit-userservd"
#endif
#define LIBEXECDIR_ENV "DINIT_USERSERVD_LIBEXECDIR"
#define APPLY_TIMEOUT_MS 4000 /* below the server's request deadline */
#define ENVDIR "dinit-userservd/env" /* in the user's runtime dir (runit, s6) */

struct uenv {
	struct hmap_node node; /* by uid */
	uid_t uid;
	unsigned n;
	char *vars[USERENV_MAX]; /* "NAME=VALUE", malloc'd */
};

struct userenv_job {
	pid_t pid;
	int pidfd;
	int out_fd; /* the helper's stdout and stderr */
	struct poller_fd *src;
	struct timer timer;
	char out[512];
	size_t len;
	bool timed_out;
	userenv_done_fn done; /* NULL once cancelled */
	void *data;
};

static struct hmap envs;
static const struct config *config; /* the daemon's: valid and current across reloads */

void userenv_init(const struct config *cfg)
{
	config = cfg;
}

static struct uenv *uenv_find(uid_t uid, bool create)
{
	struct hmap_node *n = hmap_find(&envs, uid);
	if (n)
		return container_of(n, struct uenv, node);
	if (!create)
		return NULL;
	struct uenv *e = calloc(1, sizeof(*e));
	if (!e || hmap_insert(&envs, &e->node, uid) < 0) {
		free(e);
		return NULL;
	}
	e->uid = uid;
	return e;
}

static void uenv_free(struct uenv *e)
{
	for (unsigned i = 0; i < e->n; i++)
		free(e->vars[i]);
	hmap_remove(&envs, &e->node);
	free(e);
}

/* Index of NAME (name_len bytes) in e, or -1. */
static int uenv_index(const struct uenv *e, const char *name, size_t name_len)
{
	for (unsigned i = 0; i < e->n; i++)
		if (!strncmp(e->vars[i], name, name_len) && e->vars[i][name_len] == '=')
			return (int)i;
	return -1;
}

static int record_path(uid_t uid, char *out, size_t len, const char *leaf)
{
	int n = snprintf(out, len, "%s/users/%u%s%s", config->state_dir, (unsigned)uid,
		leaf ? "/" : "", leaf ? leaf : "");
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Write uid's record whole (temporary file, rename), or remove it when empty. */
static void uenv_save(const struct uenv *e, uid_t uid)
{
	char dir[PROTO_PATH_SIZE], path[PROTO_PATH_SIZE], tmp[PROTO_PATH_SIZE + 8];
	if (record_path(uid, dir, sizeof(dir), NULL) < 0 ||
		record_path(uid, path, sizeof(path), "environment") < 0)
		return;
	if (!e || e->n == 0) {
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("cannot remove %s: %s", path, strerror(errno));
		return;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		log_err("mkdir %s: %s", dir, strerror(errno));
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_err("cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	bool ok = true;
	for (unsigned i = 0; i < e->n && ok; i++)
		ok = dprintf(fd, "%s\n", e->vars[i]) > 0;
	if (close(fd) < 0 || !ok || rename(tmp, path) < 0) {
		log_err("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
}

void userenv_restore(uid_t uid)
{
	char path[PROTO_PATH_SIZE];
	if (record_path(uid, path, sizeof(path), "environment") < 0)
		return;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	struct uenv *e = uenv_find(uid, true);
	char line[PROTO_ENV_VAR_MAX + 2];
	while (e && e->n < USERENV_MAX && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		const char *eq = strchr(line, '=');
		if (!eq || !proto_env_name_valid(line, (size_t)(eq - line)) ||
			uenv_index(e, line, (size_t)(eq - line)) >= 0)
			continue;
		char *v = strdup(line);
		if (v)
			e->vars[e->n++] = v;
	}
	fclose(f);
	if (e && e->n == 0)
		uenv_free(e);
}

void userenv_foreach(uid_t uid, void (*fn)(const char *var, void *data), void *data)
{
	struct uenv *e = uenv_find(uid, false);
	for (unsigned i = 0; e && i < e->n; i++)
		fn(e->vars[i], data);
}

void userenv_forget(uid_t uid)
{
	struct uenv *e = uenv_find(uid, false);
	if (e) {
		log_debug("forgetting the run-time environment of uid %u", (unsigned)uid);
		uenv_free(e);
	}
	uenv_save(NULL, uid);
}

void userenv_finish(void)
{
	size_t i;
	struct hmap_node *n = hmap_first(&envs, &i);
	while (n) {
		struct hmap_node *next = hmap_next(&envs, n, &i);
		uenv_free(container_of(n, struct uenv, node));
		n = next;
	}
	hmap_free(&envs);
}

/* Change the store; -1 with err when it cannot hold the change (nothing changed). */
static int store_change(const struct account *u, const struct proto_env *req, char *err,
	size_t errlen)
{
	struct uenv *e = uenv_find(u->uid, true);
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return ENOMEM;
	}
	/* Check the room first: a request is applied whole or not at all. */
	unsigned room = USERENV_MAX - e->n;
	const char *v = req->vars;
	for (uint32_t i = 0; req->op == PROTO_ENV_SET && i < req->count; v += strlen(v) + 1, i++) {
		if (uenv_index(e, v, strcspn(v, "=")) < 0 && room-- == 0) {
			snprintf(err, errlen, "too many variables (at most %d)", USERENV_MAX);
			if (!e->n)
				uenv_free(e);
			return ENOSPC;
		}
	}
	v = req->vars;
	for (uint32_t i = 0; i < req->count; v += strlen(v) + 1, i++) {
		size_t nl = strcspn(v, "=");
		int at = uenv_index(e, v, nl);
		if (req->op == PROTO_ENV_UNSET) {
			if (at >= 0) {
				free(e->vars[at]);
				memmove(&e->vars[at], &e->vars[at + 1],
					(e->n - (unsigned)at - 1) * sizeof(e->vars[0]));
				e->n--;
			}
			continue;
		}
		char *copy = strdup(v);
		if (!copy) {
			snprintf(err, errlen, "out of memory");
			return ENOMEM;
		}
		if (at >= 0) {
			free(e->vars[at]);
			e->vars[at] = copy;
		} else {
			e->vars[e->n++] = copy;
		}
	}
	uenv_save(e, u->uid);
	if (!e->n)
		uenv_free(e);
	return 0;
}

static const char *libexec_dir(void)
{
	const char *d = getenv(LIBEXECDIR_ENV);
	return d && d[0] == '/' ? d : DUS_LIBEXECDIR;
}

static void job_finish(struct userenv_job *job)
{
	poller_remove_fd(job->src);
	close(job->out_fd);
	close(job->pidfd);
	timer_disarm(&job->timer);
	job->out[job->len] = '\0';
	/* The last line is "ok" on success; else the helper's words say why. */
	char *last = job->out;
	size_t len = job->len;
	while (len && job->out[len - 1] == '\n')
		job->out[--len] = '\0';
	char *nl = strrchr(job->out, '\n');
	if (nl)
		last = nl + 1;
	bool ok = !job->timed_out && !strcmp(last, "ok");
	const char *why = job->timed_out ? "the manager did not take the change in time" : last;
	if (!ok)
		log_warn("applying the environment to a manager (helper pid %d) failed: %s",
			(int)job->pid, why);
	if (job->done)
		job->done(job->data, ok, ok ? "" : why);
	free(job);
}

static void job_output(int fd, uint32_t events, void *data)
{
	struct userenv_job *job = data;
	char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) { /* EOF: the helper is done */
		job_finish(job);
		return;
	}
	/* Keep the tail: the verdict is the last line. */
	size_t k = (size_t)n;
	if (k > sizeof(job->out) - 1 - job->len) {
		size_t drop = k + job->len - (sizeof(job->out) - 1);
		if (drop > job->len)
			drop = job->len;
		memmove(job->out, job->out + drop, job->len - drop);
		job->len -= drop;
		if (k > sizeof(job->out) - 1 - job->len)
			k = sizeof(job->out) - 1 - job->len;
	}
	memcpy(job->out + job->len, buf + (size_t)n - k, k);
	job->len += k;
}

static void job_expired(struct timer *t, void *data)
{
	struct userenv_job *job = data;
	job->timed_out = true;
	if (pidfd_send_signal(job->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
		log_warn("pidfd_send_signal: %s", strerror(errno));
	job_finish(job);
}

/* In the child: become the user and exec the helper. Never returns. */
static void job_child(const struct account *u, int out, char *const argv[], char *const envp[])
{
	log_after_fork();
	sigset_t none;
	sigemptyset(&none);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(126);
	/* Nothing of the daemon's (its lock, sockets, clients) past this point. */
	if (close_range(3, ~0U, 0) < 0)
		_exit(126);
	if (initgroups(u->name, *u->gid) < 0 || setgid(*u->gid) < 0 || setuid(u->uid) < 0 ||
		getuid() != u->uid || geteuid() != u->uid || getegid() != *u->gid ||
		(u->uid != 0 && setuid(0) == 0)) {
		dprintf(1, "cannot become %s: %s\n", u->name, strerror(errno));
		_exit(126);
	}
	if (chdir("/") < 0)
		_exit(126);
	execve(argv[0], argv, envp);
	dprintf(1, "cannot execute %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* The helper's command for u's backend; argc of the prefix, 0: nothing to apply to. */
static int job_argv(const struct account *u, const char *backend, const struct proto_env *req,
	char **argv, char *bufs, size_t buflen)
{
	backend = backend[0] ? backend : config->backend;
	int argc = 0;
	snprintf(bufs, buflen, "%s/userenv-apply", libexec_dir());
	argv[argc++] = bufs;
	if (!strcmp(backend, "dinit")) {
		argv[argc++] = "dinit";
	} else if (!strcmp(backend, "runit") || !strcmp(backend, "s6")) {
		if (!u->rundir[0])
			return 0; /* no env dir without a runtime dir: the next start has it */
		char *dir = bufs + strlen(bufs) + 1;
		snprintf(dir, buflen - (size_t)(dir - bufs), "%s/" ENVDIR, u->rundir);
		argv[argc++] = "envdir";
		argv[argc++] = dir;
	} else if (backend[0] == '/') {
		argv[argc++] = "custom";
		argv[argc++] = (char *)backend;
	} else {
		return 0; /* none */
	}
	argv[argc++] = req->op == PROTO_ENV_SET ? "set" : "unset";
	return argc;
}

static struct userenv_job *job_start(const struct account *u, const char *backend,
	const struct proto_env *req, char *err, size_t errlen)
{
	char bufs[2 * PROTO_PATH_SIZE + 64];
	char *argv[8 + PROTO_ENV_DATA_SIZE / 2];
	int argc = job_argv(u, backend, req, argv, bufs, sizeof(bufs));
	if (argc == 0)
		return NULL;
	const char *v = req->vars;
	for (uint32_t i = 0; i < req->count; v += strlen(v) + 1, i++)
		argv[argc++] = (char *)v;
	argv[argc] = NULL;

	char env_store[5][PROTO_PATH_SIZE + 32];
	char *envp[6];
	int envc = 0;
	snprintf(env_store[envc], sizeof(env_store[0]), "HOME=%s", u->home);
	envp[envc] = env_store[envc], envc++;
	snprintf(env_store[envc], sizeof(env_store[0]), "USER=%s", u->name);
	envp[envc] = env_store[envc], envc++;
	snprintf(env_store[envc], sizeof(env_store[0]), "LOGNAME=%s", u->name);
	envp[envc] = env_store[envc], envc++;
	snprintf(env_store[envc], sizeof(env_store[0]), "PATH=/usr/local/bin:/usr/bin:/bin");
	envp[envc] = env_store[envc], envc++;
	if (u->rundir[0]) {
		snprintf(env_store[envc], sizeof(env_store[0]), "XDG_RUNTIME_DIR=%s", u->rundir);
		envp[envc] = env_store[envc], envc++;
	}
	envp[envc] = NULL;

	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe2: %s", strerror(errno));
		return NULL;
	}
	struct userenv_job *job = calloc(1, sizeof(*job));
	pid_t pid = job ? fork() : -1;
	if (pid == 0)
		job_child(u, fds[1], argv, envp);
	close(fds[1]);
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		free(job);
		close(fds[0]);
		return NULL;
	}
	job->pid = pid;
	job->out_fd = fds[0];
	/* Our child, not reaped before the loop runs again: the pid is its own. */
	job->pidfd = (int)pidfd_open(pid, 0);
	timer_init(&job->timer, job_expired, job);
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0 || job->pidfd < 0 ||
		!(job->src = poller_add_fd(fds[0], EPOLLIN, job_output, job)) ||
		timer_arm(&job->timer, APPLY_TIMEOUT_MS) < 0) {
		snprintf(err, errlen, "cannot watch the helper: %s", strerror(errno));
		kill(pid, SIGKILL); /* still unreaped: the pid is the helper's */
		if (job->src)
			poller_remove_fd(job->src);
		timer_disarm(&job->timer);
		if (job->pidfd >= 0)
			close(job->pidfd);
		close(fds[0]);
		free(job);
		return NULL;
	}
	return job;
}

int userenv_change(const struct account *u, const char *backend, bool running,
	const struct proto_env *req, userenv_done_fn done, void *data, struct userenv_job **job,
	char *err, size_t errlen)
{
	*job = NULL;
	int code = store_change(u, req, err, errlen);
	if (code)
		return code;
	log_info("%s for %s: %u variable%s", req->op == PROTO_ENV_SET ? "setenv" : "unsetenv",
		u->name, (unsigned)req->count, req->count == 1 ? "" : "s");
	if (!running)
		return 0; /* the next start gets it */
	*job = job_start(u, backend, req, err, errlen);
	if (*job) {
		(*job)->done = done;
		(*job)->data = data;
	} else if (err[0]) {
		return EIO;
	}
	return 0;
}

void userenv_cancel(struct userenv_job *job)
{
	job->done = NULL;
}
