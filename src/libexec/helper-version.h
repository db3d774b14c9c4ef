/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * --version for the backend helpers: "dinit-userservd NAME VERSION" when it
 * is the only argument (no helper takes a lone "--version" otherwise).
 */
#ifndef DUS_HELPER_VERSION_H
#define DUS_HELPER_VERSION_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void helper_version(int argc, char **argv, const char *prog)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("%s %s\n", prog, DUS_VERSION);
		exit(fflush(stdout) == 0 ? 0 : 1);
	}
}

#endif
