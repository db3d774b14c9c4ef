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
 * Every state change is reported to the manager's owner (the user module)
 * through the table of callbacks it gave manager_init (struct manager_events).
 */
#ifndef DUS_SUPERVISOR_H
#define DUS_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "hmap.h"
#include "poller.h"
#include "spawn.h"

struct manager;

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
	struct manager *mgr;
	bool waiter; /* the readiness waiter, not the manager */
};


/* What the supervisor reports to a manager's owner (owner: manager_init's). */
struct manager_events {
	/* Any state change (after it): record it. */
	void (*changed)(void *owner);
	/* STARTING (or nothing to run) -> READY. */
	void (*ready)(void *owner);
	/* The start failed (FAILED), or the readiness check did (READY):
	 * why says what. May release the owner. */
	void (*failed)(void *owner, const char *why);
	/* -> STOPPED for good (no start follows). May release the owner. */
	void (*stopped)(void *owner);
	/* The manager goes on (stopping, or restarting after an exit before it
	 * was ready), but logins waiting for its readiness must not wait. */
	void (*abandoned)(void *owner, const char *why);
};

struct manager {
	enum manager_state state;
	const struct account *acct; /* who it runs as (the owner's, outlives it) */
	const struct manager_events *ev;
	void *owner;
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

/* cfg: the daemon's config, whose pointer stays valid (and up to date)
 * across reloads. */
int supervisor_init(const struct config *cfg);
void supervisor_finish(void);
/* Whether pid is one of the managers (or their PAM session keepers) or
 * readiness waiters: never a login. */
bool supervisor_owns(pid_t pid);

void manager_init(struct manager *mgr, const struct account *acct,
	const struct manager_events *ev, void *owner);
/* Start (from STOPPED or FAILED; resets the failure count) or, when stopping,
 * start again once stopped. No-op when starting, ready or in backoff. */
void manager_start(struct manager *mgr);
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
void manager_adopt(struct manager *mgr, struct manager_record *rec);
/* Before a reexec: hand over what observes a starting manager. */
struct handover;
void manager_handover(struct manager *mgr, struct handover *h);
/* Graceful stop; no-op when already stopped or stopping. */
void manager_stop(struct manager *mgr);
const char *manager_state_name(enum manager_state state);

/* Called on SIGCHLD: reap every child that has exited. */
void supervisor_reap(void);
/* Number of managers not yet STOPPED/FAILED (used at shutdown). */
unsigned supervisor_running(void);

#endif
