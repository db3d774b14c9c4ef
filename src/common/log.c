/* SPDX-License-Identifier: BSD-2-Clause */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static bool log_syslog;
static bool log_debug_on;
static const char *log_ident = "dinit-userservd";

void log_init(const char *ident, bool use_syslog, bool debug)
{
	log_ident = ident;
	log_debug_on = debug;
	if (use_syslog && !log_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!use_syslog && log_syslog)
		closelog();
	log_syslog = use_syslog;
}

void log_set_debug(bool debug)
{
	log_debug_on = debug;
}

/*
 * glibc keeps the fd of its syslog socket and takes it for its own until
 * closelog, even once the process has closed it: a child that drops the
 * daemon's fds (close_range) and later opens a file that gets that number
 * would have its next syslog call (its own, or a PAM or NSS module's) send
 * to that file, fail (ENOTSOCK), and close it, as glibc does with a socket
 * it takes for broken. So every child forgets the connection while the fd
 * is still the socket, before it closes or reuses any fd; a syslog call
 * after that connects afresh. Unconditional: libpam may have connected in
 * the daemon (pam_syslog while loading the managers' stack) even with
 * syslog = no.
 */
void log_after_fork(void)
{
	closelog();
}

static const char *prio_name(int prio)
{
	switch (prio) {
	case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_DEBUG: return "debug";
	default: return "info";
	}
}

void log_msg(int prio, const char *fmt, ...)
{
	if (prio == LOG_DEBUG && !log_debug_on)
		return;
	int saved = errno; /* callers log strerror(errno) after this */
	va_list ap;
	va_start(ap, fmt);
	if (log_syslog) {
		va_list cp;
		va_copy(cp, ap);
		vsyslog(prio, fmt, cp);
		va_end(cp);
	}
	/* One write(2) per line: a line reaches a pipe or file whole, never
	 * mixed with another writer's output. */
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s: %s: ", log_ident, prio_name(prio));
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(line) - 1) {
		int m = vsnprintf(line + n, sizeof(line) - 1 - (size_t)n, fmt, ap);
		n += m < 0 ? 0 : m;
	}
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2; /* truncated: keep the newline */
	line[n++] = '\n';
	ssize_t w;
	do
		w = write(2, line, (size_t)n);
	while (w < 0 && errno == EINTR);
	va_end(ap);
	errno = saved;
}
