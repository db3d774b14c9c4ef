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
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "hmap.h"
#include "log.h"
#include "poller.h"
#include "proc.h"
#include "util.h"

static const struct config *config; /* the daemon's: valid and current across reloads */
static char base[PATH_MAX]; /* …/dinit-userservd, "" when cgroups are not used */

static int sweep_groups(bool at_exit, bool (*in_use)(uid_t uid));
enum { CTL_PIDS, CTL_MEMORY, NCTL };
static int ctl_state[NCTL]; /* 0: not tried, 1: available, -1: not (logged) */
static char parent_dir[PATH_MAX]; /* the daemon's own group, base's parent */
static void limits_check(void);
static void inotify_event(int fd, uint32_t events, void *data);
static int inotify_fd = -1;
static struct poller_fd *inotify_src;

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

static bool init_cgroups(bool use_cgroups);

static bool (*spared)(pid_t pid);

void usergroup_set_spared(bool (*fn)(pid_t pid))
{
	spared = fn;
}

bool usergroup_init(const struct config *cfg)
{
	config = cfg;
	memset(ctl_state, 0, sizeof(ctl_state));
	if (init_cgroups(cfg->use_cgroups))
		return true;
	if (cfg->tasks_max || cfg->memory_max || cfg->memory_max_percent)
		log_warn("tasks_max and memory_max are not applied: they need the cgroups of a "
			"writable cgroup2 hierarchy, and managers are tracked by process tree");
	return false;
}

static bool init_cgroups(bool use_cgroups)
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
	snprintf(parent_dir, sizeof(parent_dir), "%s%s", mnt, strcmp(own, "/") ? own : "");
	/* Made now, not at the first stop: the daemon's fds stay constant. */
	inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (inotify_fd < 0)
		log_err("inotify_init1: %s: emptied user cgroups are left behind", strerror(errno));
	else if (!(inotify_src = poller_add_fd(inotify_fd, EPOLLIN, inotify_event, NULL))) {
		log_err("cannot watch inotify events: emptied user cgroups are left behind");
		close(inotify_fd);
		inotify_fd = -1;
	}
	log_info("managers run in cgroups below %s", base);
	limits_check();
	return true;
}

/*
 * Per-user limits: tasks_max (pids.max) and memory_max (memory.max), written
 * to each user's group before its manager joins it. The controllers must be
 * enabled in base's cgroup.subtree_control, and offered to base by the
 * daemon's own group (its subtree_control: possible when that group is the
 * root or holds no process). Tried once per controller; one log line when a
 * limit is set and its controller cannot be had.
 */
static const char *const ctl_name[NCTL] = {"pids", "memory"};
static const char *const ctl_key[NCTL] = {"tasks_max", "memory_max"};
static const char *const ctl_file[NCTL] = {"pids.max", "memory.max"};

static bool file_has_word(const char *path, const char *word)
{
	char buf[1024];
	if (read_text(AT_FDCWD, path, 0, buf, sizeof(buf)) < 0)
		return false;
	size_t wl = strlen(word);
	for (char *p = buf; (p = strstr(p, word)); p += wl)
		if ((p == buf || isspace((unsigned char)p[-1])) &&
			(!p[wl] || isspace((unsigned char)p[wl])))
			return true;
	return false;
}

static int write_string(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, s, strlen(s));
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* Make controller c usable in the user groups. false with why set if not. */
static bool ctl_enable(int c, char *why, size_t len)
{
	char path[PATH_MAX + 32], plus[16];
	snprintf(plus, sizeof(plus), "+%s", ctl_name[c]);
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", base);
	if (file_has_word(path, ctl_name[c]))
		return true;
	snprintf(path, sizeof(path), "%s/cgroup.controllers", base);
	if (!file_has_word(path, ctl_name[c])) {
		snprintf(path, sizeof(path), "%s/cgroup.controllers", parent_dir);
		if (!file_has_word(path, ctl_name[c])) {
			snprintf(why, len, "%s is not in the cgroup2 hierarchy (on a hybrid host it "
				"may be in cgroup v1)", ctl_name[c]);
			return false;
		}
		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", parent_dir);
		if (write_string(path, plus) < 0) {
			snprintf(why, len, "cannot enable %s in %s: %s", ctl_name[c], path,
				strerror(errno));
			return false;
		}
	}
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", base);
	if (write_string(path, plus) < 0) {
		snprintf(why, len, "cannot enable %s in %s: %s", ctl_name[c], path, strerror(errno));
		return false;
	}
	return true;
}

/* The configured limits: 0 for none. */
static void limits_wanted(unsigned long long want[NCTL])
{
	const struct config *cfg = config;
	want[CTL_PIDS] = cfg->tasks_max;
	want[CTL_MEMORY] = cfg->memory_max;
	if (cfg->memory_max_percent) {
		struct sysinfo si;
		if (sysinfo(&si) < 0) {
			log_err("sysinfo: %s: memory_max = %u%% not applied", strerror(errno),
				cfg->memory_max_percent);
			want[CTL_MEMORY] = 0;
		} else {
			want[CTL_MEMORY] = (unsigned long long)si.totalram * si.mem_unit / 100 *
				cfg->memory_max_percent;
		}
	}
}

/* Try the controllers of the limits that are set (once each). */
static void limits_check(void)
{
	unsigned long long want[NCTL];
	limits_wanted(want);
	for (int c = 0; c < NCTL; c++) {
		if (!want[c] || ctl_state[c])
			continue;
		char why[PATH_MAX + 128];
		ctl_state[c] = ctl_enable(c, why, sizeof(why)) ? 1 : -1;
		if (ctl_state[c] < 0)
			log_warn("%s is not applied: the %s controller is not available: %s",
				ctl_key[c], ctl_name[c], why);
		else
			log_info("%s applies: the %s controller is enabled below %s", ctl_key[c],
				ctl_name[c], base);
	}
}

/* Write the limits into the user's group (dir). */
static void limits_apply(const char *dir)
{
	unsigned long long want[NCTL];
	limits_check();
	limits_wanted(want);
	for (int c = 0; c < NCTL; c++) {
		if (ctl_state[c] <= 0)
			continue; /* never wanted, or logged as unavailable */
		char path[PATH_MAX + 96], value[32];
		snprintf(path, sizeof(path), "%s/%s", dir, ctl_file[c]);
		if (want[c])
			snprintf(value, sizeof(value), "%llu", want[c]);
		else
			strcpy(value, "max"); /* unset by a reload */
		if (write_string(path, value) < 0)
			log_warn("cannot write %s to %s: %s", value, path, strerror(errno));
	}
}

static void drain_cancel(uid_t uid);

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
		if (proc_stat(e->pid, &e->ppid, &e->start, &dead) == 0 && !dead)
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
	if (proc_stat(e->pid, &ppid, &start, &dead) < 0 || dead || start != e->start)
		return false;
	if (proc_uid(e->pid, &now_uid) < 0 || now_uid != uid)
		return false;
	if (e->pid != root && spared && spared(e->pid))
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
	if (*nkilled > 1)
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

/*
 * Emptying groups. A group cannot be removed while killed processes are still
 * exiting (EBUSY): such a group is watched (inotify on its cgroup.events, which
 * the kernel marks modified when "populated" changes) and removed once it
 * reads "populated 0". A group that is used again (usergroup_dir_fd) is
 * no longer watched.
 */
struct draining {
	struct hmap_node by_uid, by_wd;
	uid_t uid;
};

static struct hmap draining_uid, draining_wd;

static void group_path(char *out, size_t len, uid_t uid, const char *file)
{
	snprintf(out, len, "%s/user-%u%s%s", base, (unsigned)uid, file ? "/" : "", file ? file : "");
}

static void drain_forget(struct draining *dr, bool rm_watch)
{
	if (rm_watch && inotify_rm_watch(inotify_fd, (int)dr->by_wd.key) < 0)
		log_debug("inotify_rm_watch: %s", strerror(errno));
	hmap_remove(&draining_uid, &dr->by_uid);
	hmap_remove(&draining_wd, &dr->by_wd);
	free(dr);
}

/* 1: populated, 0: empty, -1: cannot tell. */
static int group_populated(uid_t uid)
{
	char path[PATH_MAX + 64], buf[256];
	group_path(path, sizeof(path), uid, "cgroup.events");
	if (read_text(AT_FDCWD, path, 0, buf, sizeof(buf)) < 0)
		return -1;
	char *p = strstr(buf, "populated ");
	return p ? p[10] != '0' : -1;
}

/* rmdir the group if it is empty: 0 done (or gone), -1 not (yet). */
static int group_try_remove(uid_t uid)
{
	char path[PATH_MAX + 64];
	group_path(path, sizeof(path), uid, NULL);
	if (rmdir(path) == 0) {
		log_debug("removed cgroup %s", path);
		return 0;
	}
	if (errno == ENOENT)
		return 0;
	if (errno != EBUSY)
		log_warn("rmdir %s: %s", path, strerror(errno));
	return -1;
}

static void inotify_event(int fd, uint32_t events, void *data)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				log_err("reading inotify events: %s", strerror(errno));
			return;
		}
		for (ssize_t off = 0; off < n;) {
			const struct inotify_event *ev = (const void *)(buf + off);
			off += (ssize_t)(sizeof(*ev) + ev->len);
			struct hmap_node *node = hmap_find(&draining_wd, (uint64_t)(unsigned)ev->wd);
			if (!node)
				continue;
			struct draining *dr = container_of(node, struct draining, by_wd);
			if (ev->mask & IN_IGNORED) { /* the group went away */
				drain_forget(dr, false);
				continue;
			}
			if (group_populated(dr->uid) == 0 && group_try_remove(dr->uid) == 0)
				drain_forget(dr, false); /* rmdir dropped the watch */
		}
	}
}

static struct draining *drain_find(uid_t uid)
{
	struct hmap_node *n = hmap_find(&draining_uid, uid);
	return n ? container_of(n, struct draining, by_uid) : NULL;
}

/* Stop watching the user's group: it is in use again. */
static void drain_cancel(uid_t uid)
{
	struct draining *dr = draining_uid.count ? drain_find(uid) : NULL;
	if (dr)
		drain_forget(dr, true);
}

void usergroup_remove(uid_t uid)
{
	if (!base[0] || drain_find(uid) || group_try_remove(uid) == 0)
		return;
	char path[PATH_MAX + 64];
	group_path(path, sizeof(path), uid, "cgroup.events");
	if (inotify_fd < 0) {
		log_err("no inotify instance: %s is left behind", path);
		return;
	}
	struct draining *dr = calloc(1, sizeof(*dr));
	int wd = dr ? inotify_add_watch(inotify_fd, path, IN_MODIFY) : -1;
	if (wd < 0) {
		log_err("inotify_add_watch %s: %s: the group is left behind", path,
			dr ? strerror(errno) : "out of memory");
		free(dr);
		return;
	}
	dr->uid = uid;
	if (hmap_find(&draining_wd, (uint64_t)(unsigned)wd) || /* cannot be: one group, one wd */
		hmap_insert(&draining_uid, &dr->by_uid, uid) < 0) {
		free(dr);
		return;
	}
	if (hmap_insert(&draining_wd, &dr->by_wd, (uint64_t)(unsigned)wd) < 0) {
		hmap_remove(&draining_uid, &dr->by_uid);
		free(dr);
		return;
	}
	/* It may have emptied between the rmdir and the watch. */
	if (group_populated(uid) == 0 && group_try_remove(uid) == 0)
		drain_forget(dr, false);
}

bool usergroup_draining(void)
{
	return draining_uid.count > 0;
}

/* rmdir every user group below base that is empty, but those of uids
 * in_use (NULL: none); at exit, name the others. Returns how many are left. */
static int sweep_groups(bool at_exit, bool (*in_use)(uid_t uid))
{
	DIR *d = opendir(base);
	if (!d) {
		if (errno != ENOENT)
			log_warn("opendir %s: %s", base, strerror(errno));
		return 0;
	}
	int left = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "user-", 5) != 0 || de->d_type != DT_DIR)
			continue;
		char *end;
		unsigned long uid = strtoul(de->d_name + 5, &end, 10);
		if (in_use && !*end && in_use((uid_t)uid))
			continue;
		if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			continue;
		left++;
		if (at_exit)
			log_warn("cgroup %s/%s is still populated (%s): it stays, and so does %s, "
				"for the next start", base, de->d_name, strerror(errno), base);
	}
	closedir(d);
	return left;
}

void usergroup_finish(void)
{
	free(dirty);
	dirty = NULL;
	ndirty = 0;
	if (!base[0])
		return;
	size_t i;
	struct hmap_node *n = hmap_first(&draining_uid, &i);
	while (n) {
		struct hmap_node *next = hmap_next(&draining_uid, n, &i);
		drain_forget(container_of(n, struct draining, by_uid), true);
		n = next;
	}
	hmap_free(&draining_uid);
	hmap_free(&draining_wd);
	if (inotify_src)
		poller_remove_fd(inotify_src);
	inotify_src = NULL;
	if (inotify_fd >= 0)
		close(inotify_fd);
	inotify_fd = -1;
	if (sweep_groups(true, NULL) == 0 && rmdir(base) < 0 && errno != ENOENT)
		log_warn("rmdir %s: %s", base, strerror(errno));
}

void usergroup_sweep(bool (*in_use)(uid_t uid))
{
	if (base[0])
		sweep_groups(false, in_use);
}

int usergroup_dir_fd(uid_t uid, bool *fresh)
{
	*fresh = false;
	if (!base[0])
		return -1;
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/user-%u", base, (unsigned)uid);
	drain_cancel(uid); /* in use again: not to be removed once empty */
	if (mkdir(path, 0755) == 0)
		*fresh = true;
	else if (errno != EEXIST) {
		log_warn("mkdir %s: %s: using the process tree", path, strerror(errno));
		return -1;
	}
	limits_apply(path);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		log_warn("open %s: %s: using the process tree", path, strerror(errno));
	return fd;
}
