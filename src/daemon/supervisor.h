/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The supervisor runs one service manager per user: spawns it as the user
 * (backend plan), watches for readiness, restarts it with exponential backoff
 * when it dies, gives up after restart_limit failures within restart_window,
 * and stops it (graceful signal, then SIGKILL of everything it started after
 * stop_timeout).
 *
 * States:  STOPPED --start--> STARTING --ready--> READY
 *          STARTING/READY --exit--> BACKOFF --timer--> STARTING
 *                                 \-> FAILED (limit reached)
 *          STARTING/READY/BACKOFF --stop--> STOPPING --exit--> STOPPED
 * Every state change is reported to the user module (user_manager_*).
 */
#ifndef DUS_SUPERVISOR_H
#define DUS_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "hmap.h"
#include "poller.h"

struct user;

enum manager_state {
	MANAGER_STOPPED,
	MANAGER_STARTING,
	MANAGER_READY,
	MANAGER_BACKOFF,
	MANAGER_STOPPING,
	MANAGER_FAILED,
};

struct child {
	struct hmap_node node; /* children by pid */
	pid_t pid;
	struct user *user;
	bool waiter; /* the readiness waiter, not the manager */
};

struct manager {
	enum manager_state state;
	struct child proc;        /* manager process; pid 0 when none */
	uint64_t proc_start;      /* its start time (pid reuse check) */
	int pidfd;                /* the manager's pidfd (every signal goes through it), else -1 */
	struct poller_fd *pidfd_src; /* watching it: an adopted manager that is not our child */
	struct child waiter;      /* readiness waiter process; pid 0 when none */
	uint64_t waiter_start;
	int ready_fd;             /* FIFO read end while STARTING, else -1 */
	int ready_keep_fd;        /* our own write end: no EPOLLHUP before the manager opens it */
	struct poller_fd *ready_src;
	int stop_signal;
	bool keeper;              /* proc is the keeper of the manager's PAM session */
	bool killing;             /* stop_timeout passed: the user's processes were killed */
	struct timer timer;       /* backoff restart, or stop_timeout */
	bool restart_after_stop;  /* a login arrived while stopping */
	time_t since;             /* wall clock of the last state change */
	uint64_t started_ms;      /* monotonic time of the last spawn */
	uint64_t window_start_ms; /* start of the current failure window */
	off_t log_start;          /* manager log offset past what was copied or came before this spawn */
	unsigned window_failures;
	unsigned restarts;        /* total restarts, for status */
	unsigned backoff_ms;
	char backend[64];
	char last_failure[256];
};

int supervisor_init(void);
void supervisor_finish(void);
/* Remember the resource limits the daemon starts with (call before changing
 * any): managers start with them. */
void supervisor_save_limits(void);
/* Set them again (a manager's child; the daemon before a reexec). 0 or -1. */
int supervisor_restore_limits(void);
/* Find out, and log once at start, how children get into their cgroup:
 * created in it by clone3(CLONE_INTO_CGROUP), or moved after a fork (a
 * kernel older than 5.7). Call when cgroups are used. */
void supervisor_probe_spawn(void);
/* Whether pid is one of the managers (or their PAM session keepers) or
 * readiness waiters: never a login. */
bool supervisor_owns(pid_t pid);

void manager_init(struct manager *mgr, struct user *user);
/* Start (from STOPPED or FAILED; resets the failure count) or, when stopping,
 * start again once stopped. No-op when starting, ready or in backoff. */
void manager_start(struct user *user);
/* What the state files (and a reexec's handover) say of a manager. */
struct manager_record {
	pid_t pid;
	uint64_t start;
	int stop_signal;
	const char *backend;
	bool starting;
	pid_t waiter_pid;
	uint64_t waiter_start;
	bool keeper; /* pid is the keeper of the manager's PAM session */
	int ready_fd, ready_keep_fd; /* handed over by a reexec, else -1 (taken) */
};

/* Take over a manager a previous daemon started: STOPPED if it is gone;
 * STARTING if it was and its readiness can still be observed (its waiter is
 * our child, or the FIFO was handed over); else READY. */
void manager_adopt(struct user *user, struct manager_record *rec);
/* Before a reexec: hand over what observes a starting manager. */
struct handover;
void manager_handover(struct user *user, struct handover *h);
/* Graceful stop; no-op when already stopped or stopping. */
void manager_stop(struct user *user);
const char *manager_state_name(enum manager_state state);

/* Called on SIGCHLD: reap every child that has exited. */
void supervisor_reap(void);
/* Number of managers not yet STOPPED/FAILED (used at shutdown). */
unsigned supervisor_running(void);

#endif
