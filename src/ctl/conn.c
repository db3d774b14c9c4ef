/* SPDX-License-Identifier: BSD-2-Clause */
/* Connection to the daemon's control socket; see conn.h. */
#include "conn.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux; a zero clock only shortens the deadline. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(const struct ctl_conn *conn)
{
	int64_t left = conn->deadline_ms - now_ms();

	return left > 0 ? (int)left : 0;
}

int ctl_conn_open(struct ctl_conn *conn, const char *path, int timeout_ms)
{
	struct sockaddr_un addr;
	struct timeval tv;

	conn->fd = -1;
	conn->path = path;
	conn->deadline_ms = now_ms() + timeout_ms;

	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		ctl_err("socket path too long (at most %zu bytes): %s", sizeof(addr.sun_path) - 1,
			path);
		return CTL_EXIT_USAGE;
	}
	memcpy(addr.sun_path, path, strlen(path));

	conn->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (conn->fd < 0) {
		ctl_err("socket: %s", strerror(errno));
		return CTL_EXIT_UNREACHABLE;
	}
	/*
	 * A blocking connect to a unix socket waits while the listener's backlog
	 * is full; the send timeout bounds that wait (and every send after it).
	 */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (setsockopt(conn->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		ctl_err("setsockopt SO_SNDTIMEO: %s", strerror(errno));
		ctl_conn_close(conn);
		return CTL_EXIT_UNREACHABLE;
	}
	while (connect(conn->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = errno;

		if (err == EINTR)
			continue;
		if (err == ENOENT || err == ECONNREFUSED)
			ctl_err("cannot connect to %s: %s (dinit-userservd is probably not running)",
				path, strerror(err));
		else if (err == EAGAIN || err == EINPROGRESS)
			ctl_err("cannot connect to %s: timed out (dinit-userservd is busy or hung)",
				path);
		else
			ctl_err("cannot connect to %s: %s", path, strerror(err));
		ctl_conn_close(conn);
		return CTL_EXIT_UNREACHABLE;
	}
	return 0;
}

int ctl_conn_send(struct ctl_conn *conn, const struct proto_msg *msg)
{
	unsigned char buf[PROTO_MSG_MAX];
	ssize_t len = proto_encode(msg, buf, sizeof(buf));
	ssize_t n;

	if (len < 0) {
		/* Arguments are checked before we get here; this is a bug. */
		ctl_err("cannot encode the %s request", proto_type_name(msg->type));
		return CTL_EXIT_FAILED;
	}
	do
		n = send(conn->fd, buf, (size_t)len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN)
			ctl_err("sending to %s: timed out (dinit-userservd is busy or hung)",
				conn->path);
		else
			ctl_err("sending to %s: %s", conn->path, strerror(errno));
		return CTL_EXIT_UNREACHABLE;
	}
	/* SOCK_SEQPACKET sends a packet whole or not at all. */
	return 0;
}

int ctl_conn_recv(struct ctl_conn *conn, struct proto_msg *msg)
{
	unsigned char buf[PROTO_MSG_MAX];
	struct pollfd pfd = { .fd = conn->fd, .events = POLLIN };
	ssize_t n;

	for (;;) {
		int ready = poll(&pfd, 1, remaining_ms(conn));

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0) {
			ctl_err("poll: %s", strerror(errno));
			return CTL_EXIT_UNREACHABLE;
		}
		if (ready == 0) {
			ctl_err("no reply from dinit-userservd at %s within %d s", conn->path,
				CTL_TIMEOUT_MS / 1000);
			return CTL_EXIT_UNREACHABLE;
		}
		break;
	}
	/* MSG_TRUNC: n is the packet's real length, so an oversized one is caught. */
	do
		n = recv(conn->fd, buf, sizeof(buf), MSG_TRUNC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		ctl_err("receiving from %s: %s", conn->path, strerror(errno));
		return CTL_EXIT_FAILED;
	}
	if (n == 0) {
		ctl_err("dinit-userservd closed the connection without a complete reply");
		return CTL_EXIT_FAILED;
	}
	if ((size_t)n > sizeof(buf)) {
		ctl_err("malformed reply from dinit-userservd: %zd-byte packet (at most %d)", n,
			PROTO_MSG_MAX);
		return CTL_EXIT_FAILED;
	}
	if (n >= 2 && (buf[0] | buf[1] << 8) != PROTO_VERSION) {
		ctl_err("dinit-userservd speaks protocol version %d, this dinit-userservctl "
			"speaks %d",
			buf[0] | buf[1] << 8, PROTO_VERSION);
		return CTL_EXIT_FAILED;
	}
	if (proto_decode(buf, (size_t)n, msg) < 0) {
		ctl_err("malformed reply from dinit-userservd (%zd bytes)", n);
		return CTL_EXIT_FAILED;
	}
	return 0;
}

void ctl_conn_close(struct ctl_conn *conn)
{
	if (conn->fd >= 0)
		close(conn->fd);
	conn->fd = -1;
}
