/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The control socket and its clients. Every client has a deadline, a bounded
 * output queue and is never written to with a blocking call; connections are
 * limited in total and per uid (root exempt from the per-uid limit).
 */
#ifndef DUS_SERVER_H
#define DUS_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* What the server asks of its owner (main.c) for the control requests that
 * concern the whole daemon. Each returns 0, or -1 with a message in err. */
struct server_hooks {
	/* reload: re-read the config file (cfg is updated in place). */
	int (*reload)(char *err, size_t errlen);
	/* reexec: whether one can be done now (the binary is there, the config
	 * loads); the reexec itself is carried out by the owner after dispatch
	 * (server_reexec_pending). */
	int (*reexec_check)(char *err, size_t errlen);
};

/* Listen on cfg->socket_path, or on inherited_fd (>= 0: a socket already
 * bound there, passed across a reexec). cfg: the daemon's config (valid and
 * current across reloads); hooks: as long as the server runs. */
int server_init(const struct config *cfg, const struct server_hooks *hooks, int inherited_fd);
/* The listening socket, to pass across a reexec. */
int server_listen_fd(void);
void server_finish(void);

struct handover;
/* Before a reexec: hand over every connection that can be carried on. */
void server_handover(struct handover *h);
/* After a reexec: take the handed-over connections back. */
void server_adopt_clients(struct handover *h);

/* Whether a client asked for a reexec (and it passed hooks->reexec_check):
 * main.c carries it out after dispatch returns, never a handler. The
 * asking client's connection crosses the exec and the new image answers it. */
bool server_reexec_pending(void);
/* The exec failed (nothing changed): answer the client that asked, and
 * forget the request. */
void server_reexec_failed(int code, const char *why);

#endif
