/* SPDX-License-Identifier: BSD-2-Clause */
/* dinit-userservctl's error reporting, shared by its modules (ctl.h). */
#include <stdarg.h>
#include <stdio.h>

#include "ctl.h"

void ctl_err(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("dinit-userservctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
