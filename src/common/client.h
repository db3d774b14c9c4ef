/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A client's connection to the daemon's control socket, shared by the PAM
 * module and dinit-userservctl.
 *
 * One connection carries one request and its replies. Every step is bounded
 * by the connection's deadline (deadline_ms, absolute CLOCK_MONOTONIC
 * milliseconds, see util.h): connecting and sending by SO_SNDTIMEO set to the
 * time left (never to zero, which would mean "forever"), receiving by poll. A
 * caller may move deadline_ms between steps (the PAM module does, to wait for
 * the final reply after WAIT).
 *
 * Rules, because the PAM module runs inside someone else's process: no global
 * state, no threads, no logging, no signal dispositions touched (SIGPIPE is
 * avoided with MSG_NOSIGNAL); the only fd is the connection, SOCK_CLOEXEC,
 * and none is left open after a failed client_open or after client_close.
 *
 * Each function returns CLIENT_OK or what went wrong; the connection then
 * holds the detail (call, err, len, version) and a message in the PAM
 * module's words, for the caller to report its own way.
 */
#ifndef DUS_CLIENT_H
#define DUS_CLIENT_H

#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

enum client_status {
	CLIENT_OK = 0,
	CLIENT_ABSENT,    /* no daemon: the socket is missing or refuses (connect) */
	CLIENT_TIMEOUT,   /* the deadline passed (or the listen backlog stayed full) */
	CLIENT_BADPATH,   /* the socket path does not fit sockaddr_un */
	CLIENT_ENCODE,    /* the request cannot be encoded (a caller's bug) */
	CLIENT_SYSERR,    /* a call failed: call, err (0 for a short write) */
	CLIENT_CLOSED,    /* the daemon closed the connection before a reply */
	CLIENT_MALFORMED, /* a reply longer than PROTO_MSG_MAX (len), or undecodable */
	CLIENT_VERSION,   /* a reply in another protocol version (version) */
};

struct client {
	int fd; /* -1 when closed */
	const char *path;
	int64_t deadline_ms;
	/* Detail of the last failure. */
	/* The failed call: socket, setsockopt SO_SNDTIMEO, connect, send, poll, recv. */
	const char *call;
	int err;          /* errno of call */
	ssize_t len;      /* MALFORMED, VERSION: the packet's real length */
	unsigned version; /* VERSION: the version the daemon speaks */
	char message[PROTO_PATH_SIZE + PROTO_TEXT_SIZE];
};

/*
 * Connect to the control socket at path before deadline_ms. On CLIENT_OK,
 * c->fd is a connected SOCK_CLOEXEC socket; otherwise c->fd is -1.
 */
enum client_status client_open(struct client *c, const char *path, int64_t deadline_ms);

/* Encode and send one request (a packet is sent whole or not at all). */
enum client_status client_send(struct client *c, const struct proto_msg *msg);

/*
 * Wait until c->deadline_ms for the next packet and decode it into *msg. The
 * socket is polled at least once, even past the deadline: a packet already
 * queued (READY right behind WAIT) is never lost to it.
 */
enum client_status client_recv(struct client *c, struct proto_msg *msg);

/* Close the connection; safe to call again, or after a failed open. */
void client_close(struct client *c);

#endif
