/* SPDX-License-Identifier: BSD-2-Clause */
#include "rundir_cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "hmap.h"
#include "log.h"
#include "poller.h"
#include "proto.h"
#include "rundir.h"
#include "spawn.h"
#include "state.h"
#include "util.h"

struct removal {
	struct hmap_node node; /* by path hash */
	uid_t uid;
	pid_t pid;
	int pidfd;
	struct poller_fd *src;
	char path[PROTO_PATH_SIZE];
};

static struct hmap removals;
static rundir_cleanup_done_fn done_fn;
static const struct config *config; /* the daemon's: valid and current across reloads */

void rundir_cleanup_init(const struct config *cfg, rundir_cleanup_done_fn done)
{
	config = cfg;
	done_fn = done;
}

static uint64_t path_hash(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return h;
}

static struct removal *removal_find(const char *path)
{
	struct hmap_node *n = hmap_find(&removals, path_hash(path));
	struct removal *r = n ? container_of(n, struct removal, node) : NULL;
	return r && !strcmp(r->path, path) ? r : NULL;
}

bool rundir_cleanup_busy(const char *path)
{
	return removals.count && removal_find(path);
}

bool rundir_cleanup_owns(pid_t pid)
{
	size_t i;
	for (struct hmap_node *n = hmap_first(&removals, &i); n; n = hmap_next(&removals, n, &i))
		if (container_of(n, struct removal, node)->pid == pid)
			return true;
	return false;
}

bool rundir_cleanup_pending(void)
{
	return removals.count > 0;
}

/*
 * Each running removal is recorded in <state_dir>/removing/<helper pid>
 * ("start-time uid path"), so that a daemon started after a reexec or a
 * crash, while the helper still runs, knows the path is not to be made again
 * yet (rundir_cleanup_restore).
 */
static int record_path(char *out, size_t len, pid_t pid)
{
	int n = pid ? snprintf(out, len, "%s/removing/%d", config->state_dir, (int)pid)
		    : snprintf(out, len, "%s/removing", config->state_dir);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void record_save(const struct removal *r, uint64_t start)
{
	char dir[PROTO_PATH_SIZE], path[PROTO_PATH_SIZE];
	if (record_path(dir, sizeof(dir), 0) < 0 || record_path(path, sizeof(path), r->pid) < 0)
		return;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_warn("cannot create %s: %s", dir, strerror(errno));
		return;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || dprintf(fd, "%" PRIu64 " %u %s\n", start, (unsigned)r->uid, r->path) < 0)
		log_warn("cannot record the removal of %s in %s: %s", r->path, path,
			strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void record_drop(pid_t pid)
{
	char path[PROTO_PATH_SIZE];
	if (record_path(path, sizeof(path), pid) == 0 && unlink(path) < 0 && errno != ENOENT)
		log_warn("cannot remove %s: %s", path, strerror(errno));
}

static void removal_ended(int fd, uint32_t events, void *data)
{
	struct removal *r = data;
	poller_remove_fd(r->src);
	close(r->pidfd);
	hmap_remove(&removals, &r->node);
	record_drop(r->pid);
	/* The helper logged what it could not remove; it is reaped with the
	 * other orphans (supervisor_reap). */
	struct stat st;
	if (lstat(r->path, &st) < 0 && errno == ENOENT)
		log_info("removed %s", r->path);
	if (done_fn)
		done_fn(r->uid, r->path);
	free(r);
}


int rundir_cleanup_start(const char *path, uid_t uid)
{
	if (rundir_cleanup_busy(path))
		return 0; /* already under way; its done() follows */
	struct removal *r = strlen(path) < sizeof(r->path) ? calloc(1, sizeof(*r)) : NULL;
	if (!r) {
		log_err("cannot remove %s in a helper (out of memory): removing it now", path);
		if (rundir_remove(path) == 0)
			log_info("removed %s", path);
		return -1;
	}
	proto_strlcpy(r->path, path, sizeof(r->path));
	r->uid = uid;
	/* libexec/rundir-remove: rundir_remove in a program of its own, with
	 * nothing of the daemon's but stderr (its log). */
	char prog[PROTO_PATH_SIZE];
	snprintf(prog, sizeof(prog), "%s/rundir-remove", backend_libexec_dir());
	char *argv[] = {prog, r->path, NULL};
	r->pid = spawn_helper(prog, argv);
	/* No SIGCHLD is handled before the pidfd exists (single thread): the
	 * helper cannot be reaped, nor its pid reused, in between. */
	r->pidfd = r->pid > 0 ? (int)pidfd_open(r->pid, 0) : -1;
	if (r->pidfd < 0) {
		log_err("cannot start a helper to remove %s (%s): removing it now", path,
			strerror(errno));
		if (r->pid > 0)
			kill(r->pid, SIGKILL);
		free(r);
		if (rundir_remove(path) == 0)
			log_info("removed %s", path);
		return -1;
	}
	r->src = poller_add_fd(r->pidfd, EPOLLIN, removal_ended, r);
	if (!r->src || hmap_insert(&removals, &r->node, path_hash(r->path)) < 0) {
		log_err("cannot watch the helper removing %s: waiting for it", path);
		if (r->src)
			poller_remove_fd(r->src);
		siginfo_t si;
		waitid(P_PIDFD, (id_t)r->pidfd, &si, WEXITED);
		close(r->pidfd);
		free(r);
		return -1;
	}
	record_save(r, proc_start_time(r->pid));
	log_debug("removing %s (helper pid %d)", path, (int)r->pid);
	return 0;
}

/* Watch helper pid (recorded with start time start) as the removal of path. */
static void removal_adopt(pid_t pid, uint64_t start, uid_t uid, const char *path)
{
	struct removal *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	r->pid = pid;
	r->uid = uid;
	proto_strlcpy(r->path, path, sizeof(r->path));
	r->pidfd = (int)pidfd_open(pid, 0);
	/* Opened first, checked after: the pidfd is the recorded helper. */
	if (r->pidfd < 0 || !proc_is(pid, start) || removal_find(path)) {
		if (r->pidfd >= 0)
			close(r->pidfd);
		free(r);
		record_drop(pid);
		return;
	}
	r->src = poller_add_fd(r->pidfd, EPOLLIN, removal_ended, r);
	if (!r->src || hmap_insert(&removals, &r->node, path_hash(r->path)) < 0) {
		if (r->src)
			poller_remove_fd(r->src);
		close(r->pidfd);
		free(r);
		return;
	}
	log_info("%s is still being removed by helper pid %d: not made again before it ends",
		path, (int)pid);
}

void rundir_cleanup_restore(void)
{
	char dir[PROTO_PATH_SIZE];
	if (record_path(dir, sizeof(dir), 0) < 0)
		return;
	DIR *d = opendir(dir);
	if (!d) {
		if (errno != ENOENT)
			log_warn("opendir %s: %s", dir, strerror(errno));
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (de->d_name[0] == '.' || *end || pid <= 0 || pid > INT32_MAX)
			continue;
		char buf[PROTO_PATH_SIZE + 64];
		ssize_t n = read_text(dirfd(d), de->d_name, O_NOFOLLOW, buf, sizeof(buf));
		uint64_t start;
		unsigned uid;
		int off = 0;
		if (n > 0)
			buf[strcspn(buf, "\n")] = '\0';
		if (n <= 0 || sscanf(buf, "%" SCNu64 " %u %n", &start, &uid, &off) != 2 || !off ||
			buf[off] != '/' || strlen(buf + off) >= PROTO_PATH_SIZE) {
			record_drop((pid_t)pid);
			continue;
		}
		removal_adopt((pid_t)pid, start, (uid_t)uid, buf + off);
	}
	closedir(d);
}

void rundir_cleanup_finish(void)
{
	size_t i;
	struct hmap_node *n = hmap_first(&removals, &i);
	while (n) {
		struct hmap_node *next = hmap_next(&removals, n, &i);
		struct removal *r = container_of(n, struct removal, node);
		log_warn("%s is still being removed (helper pid %d): left to it", r->path,
			(int)r->pid);
		poller_remove_fd(r->src);
		close(r->pidfd);
		free(r);
		n = next;
	}
	hmap_free(&removals);
}
