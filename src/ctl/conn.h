/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dinit-userservctl's connection to the daemon's control socket.
 *
 * One connection carries one request and its replies. Everything is bounded
 * by a single deadline fixed when the connection is opened: connecting,
 * sending and every reply. The exchange itself is the shared client
 * (src/common/client.h); each function here reports its failure on stderr
 * and returns the exit status it calls for (enum ctl_exit), or 0.
 */
#ifndef DUS_CTL_CONN_H
#define DUS_CTL_CONN_H

#include "client.h"
#include "proto.h"

/* How long the daemon has to answer, from connecting to the last reply. */
#define CTL_TIMEOUT_MS 10000

struct ctl_conn {
	struct client client;
};

int ctl_conn_open(struct ctl_conn *conn, const char *path, int timeout_ms);
int ctl_conn_send(struct ctl_conn *conn, const struct proto_msg *msg);
/* Wait for and decode the next reply; a malformed one is an error. */
int ctl_conn_recv(struct ctl_conn *conn, struct proto_msg *msg);
void ctl_conn_close(struct ctl_conn *conn);

#endif
