/* SPDX-License-Identifier: BSD-2-Clause */
/* Small shared helpers; see util.h. */
#include "util.h"

#include <time.h>

uint64_t monotonic_ms(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0; /* cannot fail for CLOCK_MONOTONIC */
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool str_has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (char_is_control(*p))
			return true;
	}
	return false;
}
