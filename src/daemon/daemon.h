/* SPDX-License-Identifier: BSD-2-Clause */
/* What the daemon's modules share: the config in force. */
#ifndef DUS_DAEMON_H
#define DUS_DAEMON_H

#include <stddef.h>

#include "config.h"

/* The config in force; replaced whole on reload (pointers stay valid). */
const struct config *daemon_config(void);
/* Re-read the config file. 0, or -1 with the parser's message in err. */
int daemon_reload(char *err, size_t errlen);
/* Whether a reexec can be done now (the binary is there, the config loads).
 * 0 or -1 with err. */
int daemon_reexec_check(char *err, size_t errlen);
/* Ask the main loop to exit once every manager has stopped. */
void daemon_request_exit(void);

#endif
