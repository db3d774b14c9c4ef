/* SPDX-License-Identifier: BSD-2-Clause */
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int state_path(char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static const struct config *config; /* the daemon's: valid and current across reloads */

static int state_path(char *out, size_t len, const char *fmt, ...)
{
	int n = snprintf(out, len, "%s/", config->state_dir);
	va_list ap;
	va_start(ap, fmt);
	int m = n < 0 || (size_t)n >= len ? -1 : vsnprintf(out + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return m < 0 || (size_t)(n + m) >= len ? -1 : 0;
}

static int lock_fd = -1;

int state_lock_fd(void)
{
	return lock_fd;
}

/* Whether fd is the file at path (the lock handed over by a reexec). */
static bool fd_is_file(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && S_ISREG(a.st_mode) &&
		a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int state_init(const struct config *cfg, int inherited_lock)
{
	config = cfg;
	char path[PROTO_PATH_SIZE];
	/* One daemon per state_dir: a second one would fight over managers. */
	if (state_path(path, sizeof(path), "lock") < 0)
		return -1;
	int fd = -1;
	if (inherited_lock >= 0) {
		/* A reexec: the lock crosses the exec held, never taken again,
		 * so nothing that holds the old open file (a child between fork
		 * and exec) can make the new image find it taken. flock on the
		 * open file that holds it succeeds at once (it checks, and
		 * changes nothing). */
		if (fd_is_file(inherited_lock, path) &&
			fcntl(inherited_lock, F_SETFD, FD_CLOEXEC) == 0) {
			fd = inherited_lock;
		} else {
			log_warn("--lock-fd %d is not %s: taking the lock anew", inherited_lock, path);
			close(inherited_lock);
		}
	}
	if (fd < 0)
		fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
		log_err("cannot lock %s: %s", path,
			errno == EWOULDBLOCK ? "another dinit-userservd runs with this state_dir"
					     : strerror(errno));
		return -1;
	}
	lock_fd = fd;
	/* sessions/ is ours alone; users/<uid>/ holds each manager's readiness
	 * FIFO, which the user must reach. */
	const char *dirs[] = {"sessions", "users"};
	const mode_t modes[] = {0700, 0755};
	for (size_t i = 0; i < 2; i++) {
		if (state_path(path, sizeof(path), "%s", dirs[i]) < 0 ||
			(mkdir(path, modes[i]) < 0 && errno != EEXIST) || chmod(path, modes[i]) < 0) {
			log_err("cannot create %s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Replace path with text, atomically. */
static int write_file(const char *path, const char *text, size_t len)
{
	char tmp[PROTO_PATH_SIZE + 8];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_err("cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	ssize_t n = write(fd, text, len);
	if (close(fd) < 0 || n != (ssize_t)len || rename(tmp, path) < 0) {
		log_err("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/*
 * A session's record is written once, under an id no record had before
 * (user.c): in place, O_EXCL, not through a temporary file and a rename.
 * So a daemon killed while writing it can leave a record cut short; that
 * one must never be taken for a whole one, and the order of the lines sees
 * to it: the id comes last, and state_foreach_session takes a record only
 * if the id it holds is its file's name. A cut record holds no id, or a cut
 * one (a prefix of the digits, another number), or a last line without '='
 * (read_kv fails).
 */
int state_save_session(const struct state_session *s)
{
	char path[PROTO_PATH_SIZE], text[1280];
	if (state_path(path, sizeof(path), "sessions/%" PRIu64, s->id) < 0)
		return -1;
	int n = snprintf(text, sizeof(text),
		"uid=%u\npid=%d\npid_start=%" PRIu64 "\nservice=%s\ntty=%s\n"
		"rhost=%s\nflags=%u\nsince=%lld\nexport_rundir=%d\n"
		"class=%s\ntype=%s\nseat=%s\nvtnr=%u\nmanager=%d\nid=%" PRIu64 "\n",
		(unsigned)s->uid, (int)s->pid, s->pid_start, s->service, s->tty, s->rhost,
		(unsigned)s->flags, (long long)s->since, s->export_rundir,
		s->session_class, s->session_type, s->seat, (unsigned)s->vtnr, s->has_manager, s->id);
	if (n <= 0 || (size_t)n >= sizeof(text))
		return -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) /* a stale record (cannot happen): replaced whole */
		return write_file(path, text, (size_t)n);
	if (fd < 0) {
		log_err("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	ssize_t w = write(fd, text, (size_t)n);
	int err = w < 0 ? errno : 0;
	if (close(fd) < 0 && !err)
		err = errno;
	if (err || w != (ssize_t)n) {
		log_err("cannot write %s: %s", path, err ? strerror(err) : "short write");
		unlink(path);
		return -1;
	}
	return 0;
}

void state_drop_session(uint64_t id)
{
	char path[PROTO_PATH_SIZE];
	if (state_path(path, sizeof(path), "sessions/%" PRIu64, id) == 0 && unlink(path) < 0 &&
		errno != ENOENT)
		log_warn("cannot remove %s: %s", path, strerror(errno));
}

int state_save_user(const struct state_user *u)
{
	char path[PROTO_PATH_SIZE], text[2048];
	if (state_path(path, sizeof(path), "users/%u", (unsigned)u->uid) < 0)
		return -1;
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -1;
	if (state_path(path, sizeof(path), "users/%u/state", (unsigned)u->uid) < 0)
		return -1;
	int n = snprintf(text, sizeof(text),
		"uid=%u\nmanager_pid=%d\nmanager_start=%" PRIu64 "\nrundir=%s\nrundir_managed=%d\n"
		"restarts=%u\nbackend=%s\nstop_signal=%d\nsince=%lld\nstarting=%d\n"
		"waiter_pid=%d\nwaiter_start=%" PRIu64 "\nkeeper=%d\n",
		(unsigned)u->uid, (int)u->manager_pid, u->manager_start, u->rundir, u->rundir_managed,
		u->restarts, u->backend, u->stop_signal, (long long)u->since, u->starting,
		(int)u->waiter_pid, u->waiter_start, u->keeper);
	return n > 0 && (size_t)n < sizeof(text) ? write_file(path, text, (size_t)n) : -1;
}

void state_drop_user(uid_t uid)
{
	char path[PROTO_PATH_SIZE];
	if (state_path(path, sizeof(path), "users/%u/state", (unsigned)uid) == 0 && unlink(path) < 0 &&
		errno != ENOENT)
		log_warn("cannot remove %s: %s", path, strerror(errno));
}

/* Read a small key=value file; fn is called for each line. 0 or -1. */
static int read_kv(int dirfd, const char *name, void (*fn)(const char *k, const char *v, void *),
	void *data)
{
	char buf[4096];
	ssize_t n = read_text(dirfd, name, O_NOFOLLOW, buf, sizeof(buf));
	if (n < 0 || n == (ssize_t)sizeof(buf) - 1) /* nothing, or more than a record holds */
		return -1;
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *eq = strchr(line, '=');
		if (!eq)
			return -1;
		*eq = '\0';
		fn(line, eq + 1, data);
	}
	return 0;
}

static void session_kv(const char *k, const char *v, void *data)
{
	struct state_session *s = data;
	if (!strcmp(k, "id")) s->id = strtoull(v, NULL, 10);
	else if (!strcmp(k, "uid")) s->uid = (uid_t)strtoul(v, NULL, 10);
	else if (!strcmp(k, "pid")) s->pid = (pid_t)strtol(v, NULL, 10);
	else if (!strcmp(k, "pid_start")) s->pid_start = strtoull(v, NULL, 10);
	else if (!strcmp(k, "service")) proto_strlcpy(s->service, v, sizeof(s->service));
	else if (!strcmp(k, "tty")) proto_strlcpy(s->tty, v, sizeof(s->tty));
	else if (!strcmp(k, "rhost")) proto_strlcpy(s->rhost, v, sizeof(s->rhost));
	else if (!strcmp(k, "flags")) s->flags = (uint32_t)strtoul(v, NULL, 10) & PROTO_OPEN_FLAGS_ALL;
	else if (!strcmp(k, "since")) s->since = (time_t)strtoll(v, NULL, 10);
	else if (!strcmp(k, "export_rundir")) s->export_rundir = atoi(v) != 0;
	else if (!strcmp(k, "class")) proto_strlcpy(s->session_class, v, sizeof(s->session_class));
	else if (!strcmp(k, "type")) proto_strlcpy(s->session_type, v, sizeof(s->session_type));
	else if (!strcmp(k, "seat")) proto_strlcpy(s->seat, v, sizeof(s->seat));
	else if (!strcmp(k, "vtnr")) s->vtnr = (uint32_t)strtoul(v, NULL, 10);
	else if (!strcmp(k, "manager")) s->has_manager = atoi(v) != 0;
}

static void user_kv(const char *k, const char *v, void *data)
{
	struct state_user *u = data;
	if (!strcmp(k, "uid")) u->uid = (uid_t)strtoul(v, NULL, 10);
	else if (!strcmp(k, "manager_pid")) u->manager_pid = (pid_t)strtol(v, NULL, 10);
	else if (!strcmp(k, "manager_start")) u->manager_start = strtoull(v, NULL, 10);
	else if (!strcmp(k, "rundir")) proto_strlcpy(u->rundir, v, sizeof(u->rundir));
	else if (!strcmp(k, "rundir_managed")) u->rundir_managed = atoi(v) != 0;
	else if (!strcmp(k, "restarts")) u->restarts = (unsigned)strtoul(v, NULL, 10);
	else if (!strcmp(k, "backend")) proto_strlcpy(u->backend, v, sizeof(u->backend));
	else if (!strcmp(k, "stop_signal")) u->stop_signal = atoi(v);
	else if (!strcmp(k, "starting")) u->starting = atoi(v) != 0;
	else if (!strcmp(k, "waiter_pid")) u->waiter_pid = (pid_t)strtol(v, NULL, 10);
	else if (!strcmp(k, "waiter_start")) u->waiter_start = strtoull(v, NULL, 10);
	else if (!strcmp(k, "keeper")) u->keeper = atoi(v) != 0;
	else if (!strcmp(k, "since")) u->since = (time_t)strtoll(v, NULL, 10);
}

static DIR *open_state_dir(const char *sub)
{
	char path[PROTO_PATH_SIZE];
	if (state_path(path, sizeof(path), "%s", sub) < 0)
		return NULL;
	return opendir(path);
}

void state_foreach_session(void (*fn)(const struct state_session *s, void *data), void *data)
{
	DIR *d = open_state_dir("sessions");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strchr(e->d_name, '.'))
			continue; /* ".", "..", and leftover "<id>.new" */
		struct state_session s = {.has_manager = -1};
		if (read_kv(dirfd(d), e->d_name, session_kv, &s) < 0 || !s.id ||
			strtoull(e->d_name, NULL, 10) != s.id) {
			log_warn("ignoring unreadable session record %s", e->d_name);
			unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		fn(&s, data);
	}
	closedir(d);
}

void state_foreach_user(void (*fn)(const struct state_user *u, void *data), void *data)
{
	DIR *d = open_state_dir("users");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char name[300];
		snprintf(name, sizeof(name), "%s/state", e->d_name);
		struct state_user u = {0};
		if (read_kv(dirfd(d), name, user_kv, &u) < 0)
			continue; /* no record: a user dir of the backends only */
		if (strtoul(e->d_name, NULL, 10) != u.uid) {
			log_warn("ignoring inconsistent user record %s", name);
			continue;
		}
		fn(&u, data);
	}
	closedir(d);
}

int handover_add_ready(struct handover *h, uid_t uid, int fd, int keep_fd)
{
	struct handover_ready *r = realloc(h->ready, (h->nready + 1) * sizeof(*r));
	if (!r)
		return -1;
	h->ready = r;
	r[h->nready++] = (struct handover_ready){uid, fd, keep_fd};
	return 0;
}

int handover_add_client(struct handover *h, int fd, uint64_t session, bool reexec)
{
	struct handover_client *c = realloc(h->clients, (h->nclients + 1) * sizeof(*c));
	if (!c)
		return -1;
	h->clients = c;
	c[h->nclients++] = (struct handover_client){fd, session, reexec};
	return 0;
}

int handover_save(const struct handover *h)
{
	char path[PROTO_PATH_SIZE];
	if (state_path(path, sizeof(path), "handover") < 0)
		return -1;
	size_t cap = 64 + 64 * (h->nready + h->nclients), n = 0;
	char *text = malloc(cap);
	if (!text)
		return -1;
	for (size_t i = 0; i < h->nready; i++)
		n += (size_t)snprintf(text + n, cap - n, "ready %u %d %d\n", (unsigned)h->ready[i].uid,
			h->ready[i].fd, h->ready[i].keep_fd);
	for (size_t i = 0; i < h->nclients; i++)
		n += (size_t)snprintf(text + n, cap - n, "client %d %" PRIu64 " %d\n", h->clients[i].fd,
			h->clients[i].session, h->clients[i].reexec);
	int r = write_file(path, text, n);
	free(text);
	return r;
}

/* An fd number from the handover is only trusted if it is open now. */
static bool fd_open(int fd)
{
	return fd >= 3 && fcntl(fd, F_GETFD) >= 0;
}

void handover_load(struct handover *h)
{
	memset(h, 0, sizeof(*h));
	char path[PROTO_PATH_SIZE];
	if (state_path(path, sizeof(path), "handover") < 0)
		return;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	unlink(path);
	char line[128];
	while (fgets(line, sizeof(line), f)) {
		unsigned uid;
		int fd, keep;
		uint64_t session;
		int reexec = 0;
		if (sscanf(line, "ready %u %d %d", &uid, &fd, &keep) == 3 && fd_open(fd) &&
			fd_open(keep)) {
			handover_add_ready(h, (uid_t)uid, fd, keep);
		} else if (sscanf(line, "client %d %" SCNu64 " %d", &fd, &session, &reexec) >= 2 &&
			fd_open(fd)) {
			handover_add_client(h, fd, session, reexec == 1);
		}
	}
	fclose(f);
	/* Taken over or not, none of these may reach a child. */
	for (size_t i = 0; i < h->nready; i++) {
		fcntl(h->ready[i].fd, F_SETFD, FD_CLOEXEC);
		fcntl(h->ready[i].keep_fd, F_SETFD, FD_CLOEXEC);
	}
	for (size_t i = 0; i < h->nclients; i++)
		fcntl(h->clients[i].fd, F_SETFD, FD_CLOEXEC);
}

int handover_take_ready(struct handover *h, uid_t uid, int *fd, int *keep_fd)
{
	for (size_t i = 0; i < h->nready; i++) {
		if (h->ready[i].uid != uid || h->ready[i].fd < 0)
			continue;
		*fd = h->ready[i].fd;
		*keep_fd = h->ready[i].keep_fd;
		h->ready[i].fd = h->ready[i].keep_fd = -1;
		return 0;
	}
	return -1;
}

void handover_discard(void)
{
	char path[PROTO_PATH_SIZE];
	if (state_path(path, sizeof(path), "handover") == 0 && unlink(path) < 0 && errno != ENOENT)
		log_warn("cannot remove %s: %s", path, strerror(errno));
}

void handover_abort(struct handover *h)
{
	handover_discard();
	for (size_t i = 0; i < h->nready; i++) {
		if (fcntl(h->ready[i].fd, F_SETFD, FD_CLOEXEC) < 0 ||
			fcntl(h->ready[i].keep_fd, F_SETFD, FD_CLOEXEC) < 0)
			log_err("fcntl FD_CLOEXEC on a readiness FIFO: %s", strerror(errno));
	}
	for (size_t i = 0; i < h->nclients; i++)
		if (fcntl(h->clients[i].fd, F_SETFD, FD_CLOEXEC) < 0)
			log_err("fcntl FD_CLOEXEC on fd %d: %s", h->clients[i].fd, strerror(errno));
	free(h->ready);
	free(h->clients);
	memset(h, 0, sizeof(*h));
}

void handover_finish(struct handover *h)
{
	for (size_t i = 0; i < h->nready; i++) {
		if (h->ready[i].fd >= 0)
			close(h->ready[i].fd);
		if (h->ready[i].keep_fd >= 0)
			close(h->ready[i].keep_fd);
	}
	for (size_t i = 0; i < h->nclients; i++)
		if (h->clients[i].fd >= 0)
			close(h->clients[i].fd);
	free(h->ready);
	free(h->clients);
	memset(h, 0, sizeof(*h));
}
