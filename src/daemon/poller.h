/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The daemon's event loop: one epoll instance dispatching fd readiness to
 * callbacks, and any number of timers multiplexed onto one timerfd through a
 * binary min-heap (arm/disarm O(log n), no allocation: struct timer is
 * embedded in its owner).
 *
 * Invariant: a source removed during dispatch is never called again, even if
 * the current epoll batch still holds an event for it; its memory is freed
 * only after the batch.
 */
#ifndef DUS_POLLER_H
#define DUS_POLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct poller_fd;
typedef void (*poller_fd_fn)(int fd, uint32_t events, void *data);

struct timer;
typedef void (*timer_fn)(struct timer *timer, void *data);

struct timer {
	uint64_t deadline;  /* CLOCK_MONOTONIC, milliseconds */
	size_t heap_index;  /* position in the heap; SIZE_MAX when not armed */
	timer_fn fn;
	void *data;
};

int poller_init(void);
void poller_finish(void);

/* Watch fd for events (EPOLLIN...). The poller never closes fd. */
struct poller_fd *poller_add_fd(int fd, uint32_t events, poller_fd_fn fn, void *data);
int poller_mod_fd(struct poller_fd *src, uint32_t events);
void poller_remove_fd(struct poller_fd *src);

void timer_init(struct timer *timer, timer_fn fn, void *data);
/* (Re)arm to fire once, delay_ms from now. Returns -1 on ENOMEM. */
int timer_arm(struct timer *timer, uint64_t delay_ms);
void timer_disarm(struct timer *timer);
bool timer_armed(const struct timer *timer);

/* Wait for and dispatch one batch of events. -1 on a fatal epoll error. */
int poller_dispatch(void);

/* monotonic_ms() lives in src/common/util.h. */

#endif
