/* SPDX-License-Identifier: BSD-2-Clause */
/* Connection to the daemon's control socket; see conn.h. */
#include "conn.h"

#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "ctl.h"
#include "util.h"

int ctl_conn_open(struct ctl_conn *conn, const char *path, int timeout_ms)
{
	struct client *c = &conn->client;
	enum client_status st = client_open(c, path, (int64_t)monotonic_ms() + timeout_ms);

	switch (st) {
	case CLIENT_OK:
		return 0;
	case CLIENT_BADPATH:
		ctl_err("socket path too long (at most %zu bytes): %s",
			sizeof(((struct sockaddr_un *)0)->sun_path) - 1, path);
		return CTL_EXIT_USAGE;
	case CLIENT_ABSENT:
		ctl_err("cannot connect to %s: %s (dinit-userservd is probably not running)", path,
			strerror(c->err));
		return CTL_EXIT_UNREACHABLE;
	case CLIENT_TIMEOUT:
		ctl_err("cannot connect to %s: timed out (dinit-userservd is busy or hung)", path);
		return CTL_EXIT_UNREACHABLE;
	default:
		if (strcmp(c->call, "connect") != 0)
			ctl_err("%s", c->message); /* socket: ..., setsockopt SO_SNDTIMEO: ... */
		else if (c->err == EINPROGRESS)
			ctl_err("cannot connect to %s: timed out (dinit-userservd is busy or hung)",
				path);
		else
			ctl_err("cannot connect to %s: %s", path, strerror(c->err));
		return CTL_EXIT_UNREACHABLE;
	}
}

int ctl_conn_send(struct ctl_conn *conn, const struct proto_msg *msg)
{
	struct client *c = &conn->client;
	enum client_status st = client_send(c, msg);

	switch (st) {
	case CLIENT_OK:
		return 0;
	case CLIENT_ENCODE:
		/* Arguments are checked before we get here; this is a bug. */
		ctl_err("cannot encode the %s request", proto_type_name(msg->type));
		return CTL_EXIT_FAILED;
	case CLIENT_TIMEOUT:
		ctl_err("sending to %s: timed out (dinit-userservd is busy or hung)", c->path);
		return CTL_EXIT_UNREACHABLE;
	default:
		if (strcmp(c->call, "send") != 0)
			ctl_err("%s", c->message); /* setsockopt SO_SNDTIMEO: ... */
		else
			ctl_err("sending to %s: %s", c->path,
				c->err ? strerror(c->err) : "short write");
		return CTL_EXIT_UNREACHABLE;
	}
}

int ctl_conn_recv(struct ctl_conn *conn, struct proto_msg *msg)
{
	struct client *c = &conn->client;
	enum client_status st = client_recv(c, msg);

	switch (st) {
	case CLIENT_OK:
		return 0;
	case CLIENT_TIMEOUT:
		ctl_err("no reply from dinit-userservd at %s within %d s", c->path,
			CTL_TIMEOUT_MS / 1000);
		return CTL_EXIT_UNREACHABLE;
	case CLIENT_CLOSED:
		ctl_err("dinit-userservd closed the connection without a complete reply");
		return CTL_EXIT_FAILED;
	case CLIENT_VERSION:
		ctl_err("dinit-userservd speaks protocol version %u, this dinit-userservctl "
			"speaks %d",
			c->version, PROTO_VERSION);
		return CTL_EXIT_FAILED;
	case CLIENT_MALFORMED:
		if (c->len > PROTO_MSG_MAX)
			ctl_err("malformed reply from dinit-userservd: %zd-byte packet (at most %d)",
				c->len, PROTO_MSG_MAX);
		else
			ctl_err("malformed reply from dinit-userservd (%zd bytes)", c->len);
		return CTL_EXIT_FAILED;
	default:
		if (strcmp(c->call, "poll") == 0) {
			ctl_err("poll: %s", strerror(c->err));
			return CTL_EXIT_UNREACHABLE;
		}
		ctl_err("receiving from %s: %s", c->path, strerror(c->err));
		return CTL_EXIT_FAILED;
	}
}

void ctl_conn_close(struct ctl_conn *conn)
{
	client_close(&conn->client);
}
