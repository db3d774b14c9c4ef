/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Small helpers shared by the daemon, the PAM module and the CLI: no state,
 * no logging, safe in the PAM module (see client.h for its rules).
 */
#ifndef DUS_UTIL_H
#define DUS_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC; deadlines are absolute values of it. */
uint64_t monotonic_ms(void);

/* A C0 control character or DEL: what the wire format and the tables refuse. */
static inline bool char_is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Whether s holds a control character (char_is_control). */
bool str_has_control(const char *s);

#endif
