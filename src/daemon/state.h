/*
 * Persistent state in state_dir, so that a new daemon (after a crash, a
 * SIGKILL, a plain restart or a reexec) carries on where the old one was:
 *   sessions/<id>      one file per session (written at open, removed at close)
 *   users/<uid>/state  the user's manager (pid + start time, state, rundir)
 * Files are written whole (temp file + rename), so a reader sees the old or
 * the new version, never a mix. A process is identified by pid and start
 * time (/proc/PID/stat field 22), so a reused pid is never mistaken for the
 * process that was recorded.
 */
#ifndef DUS_STATE_H
#define DUS_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "proto.h"

struct state_session {
	uint64_t id;
	uid_t uid;
	pid_t pid;
	uint64_t pid_start;
	char service[PROTO_FIELD_SIZE];
	char tty[PROTO_FIELD_SIZE];
	char rhost[PROTO_HOST_SIZE];
	uint32_t flags;
	time_t since;
	bool export_rundir;
};

struct state_user {
	uid_t uid;
	pid_t manager_pid; /* 0: none */
	uint64_t manager_start;
	char rundir[PROTO_PATH_SIZE];
	bool rundir_managed;
	unsigned restarts;
	char backend[64];
	int stop_signal;
	time_t since;
};

int state_init(void);
int state_save_session(const struct state_session *s);
void state_drop_session(uint64_t id);
int state_save_user(const struct state_user *u);
void state_drop_user(uid_t uid);

void state_foreach_user(void (*fn)(const struct state_user *u, void *data), void *data);
void state_foreach_session(void (*fn)(const struct state_session *s, void *data), void *data);

/* Start time of pid in clock ticks since boot, or 0 if it is gone. */
uint64_t proc_start_time(pid_t pid);
/* Whether pid is still the process recorded with that start time. */
bool proc_is(pid_t pid, uint64_t start);

#endif
