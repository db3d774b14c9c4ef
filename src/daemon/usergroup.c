/* SPDX-License-Identifier: BSD-2-Clause */
#include "usergroup.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "poller.h"

static char base[PATH_MAX]; /* …/dinit-userservd, "" when cgroups are not used */

/* The mount point of the cgroup2 hierarchy, from mountinfo. */
static int find_cgroup2(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -1;
	char line[4096];
	int found = -1;
	while (fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint opts... - fstype source superopts */
		char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		char mnt[PATH_MAX];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		if (strchr(mnt, '\\')) /* octal escapes: not worth decoding */
			continue;
		snprintf(out, len, "%s", mnt);
		found = 0;
		if (!strcmp(mnt, "/sys/fs/cgroup"))
			break;
	}
	fclose(f);
	return found;
}

/* Our own cgroup2 path ("0::/path" in /proc/self/cgroup). */
static int own_cgroup(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -1;
	char line[4096];
	int found = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(out, len, "%s", line + 3);
		found = 0;
	}
	fclose(f);
	return found;
}

bool usergroup_init(bool use_cgroups)
{
	base[0] = '\0';
	if (!use_cgroups)
		return false;
	char mnt[PATH_MAX], own[PATH_MAX];
	if (find_cgroup2(mnt, sizeof(mnt)) < 0 || own_cgroup(own, sizeof(own)) < 0) {
		log_info("no cgroup2 hierarchy: tracking managers by process tree");
		return false;
	}
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s%s/dinit-userservd", mnt,
		    strcmp(own, "/") ? own : "") >= (int)sizeof(path))
		return false;
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		log_info("cannot create %s (%s): tracking managers by process tree", path,
			strerror(errno));
		return false;
	}
	char kill_path[PATH_MAX + 16];
	snprintf(kill_path, sizeof(kill_path), "%s/cgroup.kill", path);
	if (access(kill_path, F_OK) < 0) {
		log_info("cgroup.kill not supported: tracking managers by process tree");
		rmdir(path);
		return false;
	}
	snprintf(base, sizeof(base), "%s", path);
	log_info("managers run in cgroups below %s", base);
	return true;
}

int usergroup_prepare(uid_t uid)
{
	if (!base[0])
		return -1;
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/user-%u", base, (unsigned)uid);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		log_warn("mkdir %s: %s: using the process tree", path, strerror(errno));
		return -1;
	}
	strcat(path, "/cgroup.procs");
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		log_warn("open %s: %s: using the process tree", path, strerror(errno));
	return fd;
}

static int cgroup_kill(uid_t uid)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/user-%u/cgroup.procs", base, (unsigned)uid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	int n = 0, pid;
	while (fscanf(f, "%d", &pid) == 1)
		n++;
	fclose(f);
	if (!n)
		return 0;
	snprintf(path, sizeof(path), "%s/user-%u/cgroup.kill", base, (unsigned)uid);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1", 1) != 1)
		log_err("cannot write %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return n;
}

/*
 * Process-tree mode. One pass reads every /proc/PID/stat once (pid, parent,
 * start time), indexes the snapshot by parent, and walks the daemon's
 * subtree (and an adopted manager's) breadth first: O(n log n) in the number
 * of processes. Each process of the user found there is then opened as a
 * pidfd and checked again through /proc *after* the pidfd exists (same start
 * time, still the user's, still below a process of the subtree): only then
 * is it signalled, through the pidfd. A pid that was reused since the scan
 * fails the check, so another user's process is never killed.
 */
struct proc_entry {
	pid_t pid, ppid;
	uint64_t start;
	bool seen; /* reached by the walk (guards a torn snapshot's cycle) */
};

/* ppid, start time and whether it is dead, from /proc/PID/stat. */
static int read_stat(pid_t pid, pid_t *ppid, uint64_t *start, bool *dead)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name may hold spaces and parens: fields resume after the
	 * last ')'. Then: state(3) ppid(4) ... starttime(22). */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -1;
	*dead = p[2] == 'Z' || p[2] == 'X';
	p += 3; /* at the space before field 4 */
	*ppid = (pid_t)strtol(p, NULL, 10);
	for (int field = 4; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return -1;
	*start = strtoull(p + 1, NULL, 10);
	return 0;
}

/* The real uid, from /proc/PID/status. */
static int read_uid(pid_t pid, uid_t *uid)
{
	char path[64], buf[2048];
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
	if (!p)
		return -1;
	*uid = (uid_t)strtoul(p + 5, NULL, 10);
	return 0;
}

static int by_pid(const void *a, const void *b)
{
	const struct proc_entry *x = a, *y = b;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

static int by_ppid(const void *a, const void *b)
{
	const struct proc_entry *x = *(struct proc_entry *const *)a;
	const struct proc_entry *y = *(struct proc_entry *const *)b;
	return (x->ppid > y->ppid) - (x->ppid < y->ppid);
}

static struct proc_entry *find_pid(struct proc_entry *procs, size_t n, pid_t pid)
{
	struct proc_entry key = {.pid = pid};
	return bsearch(&key, procs, n, sizeof(*procs), by_pid);
}

/* Index of the first child of ppid in the by-parent index, n if none. */
static size_t first_child(struct proc_entry **kids, size_t n, pid_t ppid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (kids[mid]->ppid < ppid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Read every process of /proc into *out (sorted by pid). Returns the count,
 * or -1. */
static ssize_t proc_snapshot(struct proc_entry **out)
{
	DIR *d = opendir("/proc");
	if (!d) {
		log_err("opendir /proc: %s", strerror(errno));
		return -1;
	}
	size_t n = 0, cap = 512;
	struct proc_entry *procs = malloc(cap * sizeof(*procs));
	struct dirent *de;
	while (procs && (errno = 0, de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (n == cap) {
			struct proc_entry *p = realloc(procs, 2 * cap * sizeof(*procs));
			if (!p) {
				free(procs);
				procs = NULL;
				break;
			}
			procs = p;
			cap *= 2;
		}
		struct proc_entry *e = &procs[n];
		bool dead;
		e->pid = (pid_t)atoi(de->d_name);
		e->seen = false;
		if (read_stat(e->pid, &e->ppid, &e->start, &dead) == 0 && !dead)
			n++;
	}
	closedir(d);
	if (!procs) {
		log_err("scanning /proc: out of memory");
		return -1;
	}
	qsort(procs, n, sizeof(*procs), by_pid);
	*out = procs;
	return (ssize_t)n;
}

/* A process already signalled by an earlier pass of the same kill. */
struct killed {
	pid_t pid;
	uint64_t start;
};

static bool was_killed(const struct killed *k, size_t nk, const struct proc_entry *e)
{
	for (size_t lo = 0, hi = nk; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		if (k[mid].pid == e->pid)
			return k[mid].start == e->start;
		if (k[mid].pid < e->pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int by_killed_pid(const void *a, const void *b)
{
	const struct killed *x = a, *y = b;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/*
 * Whether the process the pidfd refers to is the scanned entry e: read after
 * the pidfd was opened, the same start time at that pid means the pidfd is
 * that process; it must still be the user's and below the subtree (its
 * parent a scanned member of it, or a subreaper of it it was reparented to).
 */
static bool still_ours(const struct proc_entry *e, uid_t uid, pid_t self, pid_t root,
	struct proc_entry *procs, size_t n)
{
	pid_t ppid;
	uint64_t start;
	bool dead;
	uid_t now_uid;
	if (read_stat(e->pid, &ppid, &start, &dead) < 0 || dead || start != e->start)
		return false;
	if (read_uid(e->pid, &now_uid) < 0 || now_uid != uid)
		return false;
	if (ppid == self || (root && ppid == root))
		return true;
	struct proc_entry *parent = find_pid(procs, n, ppid);
	return parent && parent->seen;
}

/*
 * One scan, one walk: SIGKILL each process of the daemon's subtree (or root's)
 * whose real uid is uid and which is not in *killed already. Appends what it
 * signalled to *killed. Returns how many were signalled, or -1.
 */
static int tree_kill_pass(uid_t uid, pid_t root, struct killed **killed, size_t *nkilled,
	size_t *kcap)
{
	struct proc_entry *procs;
	ssize_t sn = proc_snapshot(&procs);
	if (sn < 0)
		return -1;
	size_t n = (size_t)sn;
	struct proc_entry **kids = malloc((n ? n : 1) * sizeof(*kids));
	struct proc_entry **queue = malloc((n + 2) * sizeof(*queue));
	if (!kids || !queue) {
		log_err("scanning /proc: out of memory");
		free(kids);
		free(queue);
		free(procs);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		kids[i] = &procs[i];
	qsort(kids, n, sizeof(*kids), by_ppid);

	/* Breadth first from the daemon (and an adopted manager, not below
	 * us): queue[] ends up holding the whole subtree, parents first. */
	pid_t self = getpid();
	struct proc_entry self_e = {.pid = self}, root_e = {.pid = root};
	size_t qn = 0;
	queue[qn++] = &self_e;
	struct proc_entry *r = root ? find_pid(procs, n, root) : NULL;
	if (root && !r)
		queue[qn++] = &root_e; /* gone already: its orphans are ours */
	else if (r && !r->seen) {
		r->seen = true;
		queue[qn++] = r;
	}
	for (size_t qi = 0; qi < qn; qi++) {
		pid_t parent = queue[qi]->pid;
		for (size_t k = first_child(kids, n, parent); k < n && kids[k]->ppid == parent; k++) {
			struct proc_entry *c = kids[k];
			if (c->seen || c->pid == self)
				continue;
			c->seen = true;
			queue[qn++] = c;
		}
	}

	/* Deepest first: a child is checked before its parent dies and it is
	 * reparented. */
	int signalled = 0;
	size_t before = *nkilled;
	for (size_t qi = qn; qi-- > 0;) {
		struct proc_entry *e = queue[qi];
		if (e == &self_e || e == &root_e || was_killed(*killed, before, e))
			continue;
		int pidfd = (int)pidfd_open(e->pid, 0);
		if (pidfd < 0)
			continue; /* gone */
		if (still_ours(e, uid, self, root, procs, n) &&
			pidfd_send_signal(pidfd, SIGKILL, NULL, 0) == 0) {
			signalled++;
			if (*nkilled == *kcap) {
				size_t cap = *kcap ? 2 * *kcap : 256;
				struct killed *k = realloc(*killed, cap * sizeof(**killed));
				if (k) {
					*killed = k;
					*kcap = cap;
				}
			}
			if (*nkilled < *kcap)
				(*killed)[(*nkilled)++] = (struct killed){e->pid, e->start};
		}
		close(pidfd);
	}
	qsort(*killed, *nkilled, sizeof(**killed), by_killed_pid);
	free(queue);
	free(kids);
	free(procs);
	return signalled;
}

/* Uids whose tree kill gave up with processes possibly left (a fork race
 * that outlasted every pass): the next start of their manager kills again. */
static uid_t *dirty;
static size_t ndirty;

static bool dirty_take(uid_t uid)
{
	for (size_t i = 0; i < ndirty; i++)
		if (dirty[i] == uid) {
			dirty[i] = dirty[--ndirty];
			return true;
		}
	return false;
}

static void dirty_add(uid_t uid)
{
	dirty_take(uid);
	uid_t *d = realloc(dirty, (ndirty + 1) * sizeof(*dirty));
	if (!d) {
		log_err("remembering leftovers of uid %u: out of memory", (unsigned)uid);
		return;
	}
	dirty = d;
	dirty[ndirty++] = uid;
}

/* Passes until one finds nothing new: a process that forked between a scan
 * and its kill leaves a child the next scan sees (killed processes cannot
 * fork any more). Usually two scans: one that kills, one that finds nothing. */
static int tree_kill(uid_t uid, pid_t root)
{
	struct killed *killed = NULL;
	size_t nkilled = 0, kcap = 0;
	int total = 0, n = 0, pass;
	uint64_t t0 = monotonic_ms();
	for (pass = 0; pass < 16; pass++) {
		n = tree_kill_pass(uid, root, &killed, &nkilled, &kcap);
		if (n <= 0)
			break;
		total += n;
	}
	free(killed);
	log_debug("process tree of uid %u: %d killed, %d scans, %llu ms", (unsigned)uid, total,
		pass + (pass < 16), (unsigned long long)(monotonic_ms() - t0));
	if (n != 0) {
		log_warn("processes of uid %u may be left: killed again before its manager's "
			"next start", (unsigned)uid);
		dirty_add(uid);
	}
	return total;
}

int usergroup_kill(uid_t uid, pid_t root)
{
	if (base[0])
		return cgroup_kill(uid);
	dirty_take(uid);
	return tree_kill(uid, root);
}

int usergroup_clear(uid_t uid)
{
	if (base[0])
		return cgroup_kill(uid);
	/* Process tree: everything was killed when the last manager exited;
	 * only a kill that may have left something walks /proc again. */
	return dirty_take(uid) ? tree_kill(uid, 0) : 0;
}

void usergroup_remove(uid_t uid)
{
	if (!base[0])
		return;
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/user-%u", base, (unsigned)uid);
	if (rmdir(path) < 0 && errno != ENOENT && errno != EBUSY)
		log_debug("rmdir %s: %s", path, strerror(errno));
}
