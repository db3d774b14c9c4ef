/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Small helpers shared by the daemon, the PAM module and the CLI: no state,
 * no logging, safe in the PAM module (see client.h for its rules).
 */
#ifndef DUS_UTIL_H
#define DUS_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Milliseconds on CLOCK_MONOTONIC; deadlines are absolute values of it. */
uint64_t monotonic_ms(void);

/* A C0 control character or DEL: what the wire format and the tables refuse. */
static inline bool char_is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Whether s holds a control character (char_is_control). */
bool str_has_control(const char *s);

/* Read the small file path (relative to dirfd, or AT_FDCWD) into buf as a
 * string: one read of at most len - 1 bytes, NUL-terminated. flags are added
 * to O_RDONLY | O_CLOEXEC (O_NOFOLLOW). The bytes read, or -1 when it cannot
 * be opened or read or is empty. */
ssize_t read_text(int dirfd, const char *path, int flags, char *buf, size_t len);

#endif
