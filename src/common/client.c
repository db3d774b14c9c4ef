/* SPDX-License-Identifier: BSD-2-Clause */
/* A client's connection to the control socket; see client.h. */
#include "client.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

__attribute__((format(printf, 3, 4))) static enum client_status fail(struct client *c,
	enum client_status status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
	return status;
}

static enum client_status fail_call(struct client *c, const char *call, int err)
{
	c->call = call;
	c->err = err;
	return fail(c, CLIENT_SYSERR, "%s: %s", call, strerror(err));
}

/* Time left until the deadline, in ms; <= 0 once it has passed. */
static int64_t remaining_ms(const struct client *c)
{
	return c->deadline_ms - (int64_t)monotonic_ms();
}

/*
 * Bound blocking connect/send by the time left (SO_SNDTIMEO: a zero timeval
 * would mean "forever", so it is never set to zero).
 */
static int send_deadline_set(const struct client *c)
{
	int64_t left = remaining_ms(c);
	if (left <= 0)
		left = 1;
	struct timeval tv = {
		.tv_sec = (time_t)(left / 1000),
		.tv_usec = (suseconds_t)(left % 1000) * 1000,
	};
	return setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void reset(struct client *c)
{
	c->call = "";
	c->err = 0;
	c->len = 0;
	c->version = 0;
	c->message[0] = '\0';
}

enum client_status client_open(struct client *c, const char *path, int64_t deadline_ms)
{
	c->fd = -1;
	c->path = path;
	c->deadline_ms = deadline_ms;
	reset(c);

	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len >= sizeof(addr.sun_path))
		return fail(c, CLIENT_BADPATH, "socket path too long: %s", path);
	memcpy(addr.sun_path, path, len + 1);

	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail_call(c, "socket", errno);
	c->fd = fd;
	for (;;) {
		if (remaining_ms(c) <= 0) {
			client_close(c);
			return fail(c, CLIENT_TIMEOUT, "connect %s: timed out", path);
		}
		if (send_deadline_set(c) != 0) {
			int err = errno;
			client_close(c);
			return fail_call(c, "setsockopt SO_SNDTIMEO", err);
		}
		if (connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) == 0)
			return CLIENT_OK;
		int err = errno;
		if (err == EINTR)
			continue;
		if (err == EISCONN) /* an interrupted attempt completed */
			return CLIENT_OK;
		client_close(c);
		c->call = "connect";
		c->err = err;
		if (err == ENOENT || err == ECONNREFUSED)
			return fail(c, CLIENT_ABSENT, "dinit-userservd not running (%s: %s)", path,
				strerror(err));
		if (err == EAGAIN) /* listen backlog stayed full until the deadline */
			return fail(c, CLIENT_TIMEOUT, "connect %s: timed out", path);
		return fail(c, CLIENT_SYSERR, "connect %s: %s", path, strerror(err));
	}
}

enum client_status client_send(struct client *c, const struct proto_msg *msg)
{
	reset(c);
	unsigned char buf[PROTO_MSG_MAX];
	ssize_t len = proto_encode(msg, buf, sizeof(buf));
	if (len < 0)
		return fail(c, CLIENT_ENCODE, "cannot encode %s request",
			proto_type_name(msg->type));
	for (;;) {
		if (remaining_ms(c) <= 0)
			return fail(c, CLIENT_TIMEOUT, "send: timed out");
		if (send_deadline_set(c) != 0)
			return fail_call(c, "setsockopt SO_SNDTIMEO", errno);
		/* SOCK_SEQPACKET: a packet is sent whole or not at all. */
		ssize_t n = send(c->fd, buf, (size_t)len, MSG_NOSIGNAL);
		if (n == len)
			return CLIENT_OK;
		if (n >= 0) {
			c->call = "send";
			return fail(c, CLIENT_SYSERR, "send: short write (%zd of %zd bytes)", n,
				len);
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->call = "send";
			c->err = errno;
			return fail(c, CLIENT_TIMEOUT, "send: timed out");
		}
		return fail_call(c, "send", errno);
	}
}

enum client_status client_recv(struct client *c, struct proto_msg *msg)
{
	reset(c);
	/* One byte more than the largest valid packet, to tell an oversize one. */
	unsigned char buf[PROTO_MSG_MAX + 1];
	for (;;) {
		int64_t left = remaining_ms(c);
		if (left < 0)
			left = 0;
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int r = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return fail_call(c, "poll", errno);
		}
		if (r == 0) {
			if (remaining_ms(c) <= 0)
				return fail(c, CLIENT_TIMEOUT, "no reply from dinit-userservd");
			continue;
		}
		/* MSG_TRUNC: n is the packet's real length, so an oversize one is caught. */
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return fail_call(c, "recv", errno);
		}
		if (n == 0)
			return fail(c, CLIENT_CLOSED, "dinit-userservd closed the connection");
		c->len = n;
		if ((size_t)n > PROTO_MSG_MAX)
			return fail(c, CLIENT_MALFORMED,
				"invalid message from dinit-userservd (%zd bytes)", n);
		if (n >= 2 && (unsigned)(buf[0] | buf[1] << 8) != PROTO_VERSION) {
			c->version = (unsigned)(buf[0] | buf[1] << 8);
			return fail(c, CLIENT_VERSION,
				"invalid message from dinit-userservd (%zd bytes)", n);
		}
		if (proto_decode(buf, (size_t)n, msg) != 0)
			return fail(c, CLIENT_MALFORMED,
				"invalid message from dinit-userservd (%zd bytes)", n);
		return CLIENT_OK;
	}
}

void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
