/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Readers of /proc/PID. A process is identified by pid and start time
 * (/proc/PID/stat field 22), so a reused pid is never mistaken for the
 * process that was recorded. No logging: a process that is gone reads as 0.
 */
#ifndef DUS_PROC_H
#define DUS_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* From /proc/PID/stat: parent, start time (clock ticks since boot) and
 * whether it is a zombie or dead. 0, or -1 when it cannot be read. */
int proc_stat(pid_t pid, pid_t *ppid, uint64_t *start, bool *dead);
/* Start time of pid in clock ticks since boot, or 0 if it is gone. */
uint64_t proc_start_time(pid_t pid);
/* Whether pid is still the process recorded with that start time. */
bool proc_is(pid_t pid, uint64_t start);
/* The real uid of pid, from /proc/PID/status: 0, or -1 if it cannot be read. */
int proc_uid(pid_t pid, uid_t *uid);

#endif
