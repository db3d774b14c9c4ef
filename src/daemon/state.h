/* SPDX-License-Identifier: BSD-2-Clause */
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

#include "config.h"
#include "proc.h" /* proc_is, proc_start_time: state files record pid + start time */
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
	char session_class[PROTO_TOKEN_SIZE]; /* "" in records of older daemons */
	char session_type[PROTO_TOKEN_SIZE];
	char seat[PROTO_TOKEN_SIZE];
	uint32_t vtnr;
	int has_manager; /* 1 or 0; -1 in records of older daemons */
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
	bool starting;          /* not ready yet */
	pid_t waiter_pid;       /* its readiness waiter, 0: none */
	uint64_t waiter_start;
	bool keeper;            /* manager_pid is its PAM session's keeper */
};

/*
 * What crosses a reexec besides the listening socket: open fds the new image
 * takes over (their numbers survive execve). Written to state_dir/handover
 * just before the exec, read and removed by the new image.
 */
struct handover_ready {
	uid_t uid;
	int fd, keep_fd; /* the readiness FIFO of a manager still starting */
};

struct handover_client {
	int fd;
	uint64_t session; /* the session whose readiness it awaits, 0: none */
	bool reexec;      /* it asked for this reexec: the new image answers it */
};

struct handover {
	struct handover_ready *ready;
	size_t nready;
	struct handover_client *clients;
	size_t nclients;
};

int handover_add_ready(struct handover *h, uid_t uid, int fd, int keep_fd);
int handover_add_client(struct handover *h, int fd, uint64_t session, bool reexec);
int handover_save(const struct handover *h);
/* Read (and remove) the handover file; an empty handover when there is none. */
void handover_load(struct handover *h);
/* Take the readiness fds handed over for uid: 0, or -1 when there are none. */
int handover_take_ready(struct handover *h, uid_t uid, int *fd, int *keep_fd);
/* Close whatever nobody took, and free. */
void handover_finish(struct handover *h);
/* The exec failed: remove the handover file and make every fd h lists
 * close-on-exec again. Nothing is closed: each fd still belongs to whoever
 * had it before (a client, a starting manager). Frees h's lists. */
void handover_abort(struct handover *h);
/* Remove a handover file a failed or interrupted reexec left behind. */
void handover_discard(void);

/* Take the lock on state_dir (one daemon per state_dir) and make its
 * directories. lock_fd >= 0: the lock, already held, handed over across a
 * reexec (used if it still is the lock file; else the lock is taken anew). */
int state_init(const struct config *cfg, int lock_fd);
/* The fd holding the lock, to pass across a reexec. */
int state_lock_fd(void);
/* Write the record of a new session (s->id never had one). */
int state_save_session(const struct state_session *s);
void state_drop_session(uint64_t id);
int state_save_user(const struct state_user *u);
void state_drop_user(uid_t uid);

void state_foreach_user(void (*fn)(const struct state_user *u, void *data), void *data);
void state_foreach_session(void (*fn)(const struct state_session *s, void *data), void *data);

#endif
