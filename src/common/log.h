/* SPDX-License-Identifier: BSD-2-Clause */
/* Daemon logging: stderr always, syslog when asked. */
#ifndef DUS_LOG_H
#define DUS_LOG_H

#include <stdbool.h>
#include <syslog.h>

void log_init(const char *ident, bool use_syslog, bool debug);
void log_set_debug(bool debug);
/* First thing in every child the daemon forks, before it closes the
 * daemon's fds: forget the daemon's syslog connection (see log.c). */
void log_after_fork(void);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
