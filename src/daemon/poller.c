/* SPDX-License-Identifier: BSD-2-Clause */
#include "poller.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct poller_fd {
	int fd;
	poller_fd_fn fn;
	void *data;
	bool removed;
	struct poller_fd *next_dead;
};

static int epoll_fd = -1;
static int timer_fd = -1;
static struct poller_fd timer_src;
static struct poller_fd *dead; /* removed during this batch, freed after it */

static struct timer **heap;
static size_t heap_len, heap_cap;
static uint64_t timerfd_deadline; /* what timer_fd is set to; 0 = disarmed */

static void heap_swap(size_t a, size_t b)
{
	struct timer *t = heap[a];
	heap[a] = heap[b];
	heap[b] = t;
	heap[a]->heap_index = a;
	heap[b]->heap_index = b;
}

static void heap_up(size_t i)
{
	while (i > 0 && heap[(i - 1) / 2]->deadline > heap[i]->deadline) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < heap_len && heap[l]->deadline < heap[m]->deadline)
			m = l;
		if (r < heap_len && heap[r]->deadline < heap[m]->deadline)
			m = r;
		if (m == i)
			return;
		heap_swap(i, m);
		i = m;
	}
}

/*
 * Keep timer_fd set no later than the earliest deadline in the heap. It is
 * only ever moved earlier here: when the earliest timer is disarmed (most
 * client deadlines are), timer_fd may fire early, finds nothing due and is
 * set again then. That saves a timerfd_settime on every disarm.
 */
static void timerfd_sync(void)
{
	uint64_t want = heap_len ? heap[0]->deadline : 0;
	if (!want || (timerfd_deadline && timerfd_deadline <= want))
		return;
	struct itimerspec its = {0};
	if (want) {
		its.it_value.tv_sec = (time_t)(want / 1000);
		its.it_value.tv_nsec = (long)(want % 1000) * 1000000;
	}
	if (timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		log_err("timerfd_settime: %s", strerror(errno));
		return;
	}
	timerfd_deadline = want;
}

void timer_init(struct timer *timer, timer_fn fn, void *data)
{
	timer->deadline = 0;
	timer->heap_index = SIZE_MAX;
	timer->fn = fn;
	timer->data = data;
}

bool timer_armed(const struct timer *timer)
{
	return timer->heap_index != SIZE_MAX;
}

int timer_arm(struct timer *timer, uint64_t delay_ms)
{
	timer_disarm(timer);
	if (heap_len == heap_cap) {
		size_t cap = heap_cap ? heap_cap * 2 : 64;
		struct timer **h = realloc(heap, cap * sizeof(*h));
		if (!h)
			return -1;
		heap = h;
		heap_cap = cap;
	}
	/* +1: a zero-delay timer must still read as armed (deadline != 0). */
	timer->deadline = monotonic_ms() + delay_ms + 1;
	timer->heap_index = heap_len;
	heap[heap_len++] = timer;
	heap_up(timer->heap_index);
	timerfd_sync();
	return 0;
}

void timer_disarm(struct timer *timer)
{
	if (!timer_armed(timer))
		return;
	size_t i = timer->heap_index;
	timer->heap_index = SIZE_MAX;
	heap_len--;
	if (i != heap_len) {
		heap[i] = heap[heap_len];
		heap[i]->heap_index = i;
		heap_down(i);
		heap_up(i);
	}
	timerfd_sync();
}

static void timers_expire(int fd, uint32_t events, void *data)
{
	uint64_t ticks;
	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		log_err("read timerfd: %s", strerror(errno));
	timerfd_deadline = 0; /* fired: must be set again */
	uint64_t now = monotonic_ms();
	/* A callback may arm or disarm any timer, including this one. */
	while (heap_len && heap[0]->deadline <= now) {
		struct timer *t = heap[0];
		timer_disarm(t);
		t->fn(t, t->data);
	}
	timerfd_sync();
}

int poller_init(void)
{
	epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (epoll_fd < 0) {
		log_err("epoll_create1: %s", strerror(errno));
		return -1;
	}
	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (timer_fd < 0) {
		log_err("timerfd_create: %s", strerror(errno));
		return -1;
	}
	timer_src = (struct poller_fd){.fd = timer_fd, .fn = timers_expire};
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &timer_src};
	if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, timer_fd, &ev) < 0) {
		log_err("epoll_ctl: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void free_dead(void)
{
	while (dead) {
		struct poller_fd *next = dead->next_dead;
		free(dead);
		dead = next;
	}
}

void poller_finish(void)
{
	free_dead();
	if (timer_fd >= 0)
		close(timer_fd);
	if (epoll_fd >= 0)
		close(epoll_fd);
	timer_fd = epoll_fd = -1;
	timerfd_deadline = 0; /* a poller_init after this starts from a new timerfd */
	free(heap);
	heap = NULL;
	heap_len = heap_cap = 0;
}

struct poller_fd *poller_add_fd(int fd, uint32_t events, poller_fd_fn fn, void *data)
{
	struct poller_fd *src = calloc(1, sizeof(*src));
	if (!src) {
		log_err("out of memory");
		return NULL;
	}
	*src = (struct poller_fd){.fd = fd, .fn = fn, .data = data};
	struct epoll_event ev = {.events = events, .data.ptr = src};
	if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_err("epoll_ctl add fd %d: %s", fd, strerror(errno));
		free(src);
		return NULL;
	}
	return src;
}

int poller_mod_fd(struct poller_fd *src, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = src};
	if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, src->fd, &ev) < 0) {
		log_err("epoll_ctl mod fd %d: %s", src->fd, strerror(errno));
		return -1;
	}
	return 0;
}

void poller_remove_fd(struct poller_fd *src)
{
	if (!src || src->removed)
		return;
	epoll_ctl(epoll_fd, EPOLL_CTL_DEL, src->fd, NULL);
	src->removed = true;
	src->next_dead = dead;
	dead = src;
}

int poller_dispatch(void)
{
	struct epoll_event events[64];
	int n = epoll_wait(epoll_fd, events, 64, -1);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		log_err("epoll_wait: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct poller_fd *src = events[i].data.ptr;
		if (!src->removed)
			src->fn(src->fd, events[i].events, src->data);
	}
	free_dead();
	return 0;
}
