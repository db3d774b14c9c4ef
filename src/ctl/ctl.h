/* SPDX-License-Identifier: BSD-2-Clause */
/* dinit-userservctl: exit statuses and error reporting shared by its modules. */
#ifndef DUS_CTL_H
#define DUS_CTL_H

/* Exit statuses; documented in dinit-userservctl(1), scripts rely on them. */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAILED = 1,      /* the daemon refused, or answered nonsense */
	CTL_EXIT_USAGE = 2,       /* bad command line */
	CTL_EXIT_UNREACHABLE = 3, /* no daemon at the socket, or no answer in time */
};

/* Print "dinit-userservctl: <message>\n" to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
