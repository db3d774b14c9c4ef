/* SPDX-License-Identifier: BSD-2-Clause */
/* Readers of /proc/PID; see proc.h. */
#include "proc.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int proc_stat(pid_t pid, pid_t *ppid, uint64_t *start, bool *dead)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_text(AT_FDCWD, path, 0, buf, sizeof(buf)) < 0)
		return -1;
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

uint64_t proc_start_time(pid_t pid)
{
	pid_t ppid;
	uint64_t start;
	bool dead;
	return proc_stat(pid, &ppid, &start, &dead) == 0 ? start : 0;
}

bool proc_is(pid_t pid, uint64_t start)
{
	return pid > 0 && start && proc_start_time(pid) == start;
}

int proc_uid(pid_t pid, uid_t *uid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_text(AT_FDCWD, path, 0, buf, sizeof(buf)) < 0)
		return -1;
	char *p = strstr(buf, "\nUid:");
	unsigned long v;
	if (!p || sscanf(p + 5, "%lu", &v) != 1)
		return -1;
	*uid = (uid_t)v;
	return 0;
}
