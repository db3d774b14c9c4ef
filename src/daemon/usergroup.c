/* SPDX-License-Identifier: BSD-2-Clause */
#include "usergroup.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

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

struct proc_entry {
	pid_t pid, ppid;
	uid_t uid;
};

static int read_proc(pid_t pid, struct proc_entry *e)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int have = 0;
	e->pid = pid;
	while (fgets(buf, sizeof(buf), f) && have != 3) {
		unsigned v;
		char state;
		if (sscanf(buf, "State: %c", &state) == 1 && (state == 'Z' || state == 'X')) {
			have = 0; /* dead already: nothing to kill */
			break;
		}
		if (sscanf(buf, "PPid: %u", &v) == 1) {
			e->ppid = (pid_t)v;
			have |= 1;
		} else if (sscanf(buf, "Uid: %u", &v) == 1) {
			e->uid = (uid_t)v;
			have |= 2;
		}
	}
	fclose(f);
	return have == 3 ? 0 : -1;
}

/* One pass over /proc: kill each process of our subtree owned by uid. */
static int tree_kill(uid_t uid, pid_t root)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	size_t n = 0, cap = 256;
	struct proc_entry *procs = malloc(cap * sizeof(*procs));
	struct dirent *de;
	while (procs && (de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (n == cap) {
			struct proc_entry *p = realloc(procs, 2 * cap * sizeof(*procs));
			if (!p)
				break;
			procs = p;
			cap *= 2;
		}
		if (read_proc((pid_t)atoi(de->d_name), &procs[n]) == 0)
			n++;
	}
	closedir(d);
	if (!procs)
		return 0;
	pid_t self = getpid();
	int killed = 0;
	for (size_t i = 0; i < n; i++) {
		if (procs[i].uid != uid || procs[i].pid == self)
			continue;
		/* Walk up: is this process below the daemon? (bounded: pid trees
		 * have no cycles, but a racing reparent must not loop us) */
		pid_t p = procs[i].pid == root ? self : procs[i].ppid;
		for (int depth = 0; p > 1 && p != self && p != root && depth < 4096; depth++) {
			size_t j;
			for (j = 0; j < n && procs[j].pid != p; j++)
				;
			p = j < n ? procs[j].ppid : 0;
		}
		if ((p == self || (root && p == root)) && kill(procs[i].pid, SIGKILL) == 0)
			killed++;
	}
	free(procs);
	return killed;
}

int usergroup_kill(uid_t uid, pid_t root)
{
	if (base[0])
		return cgroup_kill(uid);
	/* A process may fork between the scan and the kill: scan again until a
	 * pass finds nothing (killed processes cannot fork any more). */
	int total = 0;
	for (int pass = 0; pass < 16; pass++) {
		int n = tree_kill(uid, root);
		if (!n)
			break;
		total += n;
	}
	return total;
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

int usergroup_dir_fd(uid_t uid, bool *fresh)
{
	*fresh = false;
	if (!base[0])
		return -1;
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/user-%u", base, (unsigned)uid);
	if (mkdir(path, 0755) == 0)
		*fresh = true;
	else if (errno != EEXIST) {
		log_warn("mkdir %s: %s: using the process tree", path, strerror(errno));
		return -1;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		log_warn("open %s: %s: using the process tree", path, strerror(errno));
	return fd;
}
