/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer target for the config parser: the input is written to a memfd
 * and loaded through its /proc/self/fd path, like a real file.
 *
 * Properties checked:
 *  - on error *cfg is unchanged and the message names the file;
 *  - on success, config_dump of the result loads back (onto defaults) to
 *    the very same config.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd_open(const char *name, char *path, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

static void memfd_fill(int fd, const void *data, size_t size)
{
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size) {
		perror("memfd write");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int in_fd = -1, dump_fd = -1;
	static char in_path[64], dump_path[64];
	static struct config cfg, before, back;
	char err[512];

	if (in_fd < 0) {
		in_fd = memfd_open("config", in_path, sizeof(in_path));
		dump_fd = memfd_open("dump", dump_path, sizeof(dump_path));
	}
	memfd_fill(in_fd, data, size);

	config_defaults(&cfg);
	before = cfg;
	if (config_load(&cfg, in_path, err, sizeof(err)) < 0) {
		if (memcmp(&cfg, &before, sizeof(cfg)) != 0)
			abort(); /* changed on error */
		if (strncmp(err, in_path, strlen(in_path)) != 0)
			abort(); /* message does not name the file */
		return 0;
	}

	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		abort();
	config_dump(&cfg, f);
	if (fclose(f) != 0)
		abort();
	memfd_fill(dump_fd, text, len);
	free(text);

	config_defaults(&back);
	if (config_load(&back, dump_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "dump does not load: %s\n", err);
		abort();
	}
	if (memcmp(&cfg, &back, sizeof(cfg)) != 0)
		abort(); /* dump lost or changed something */
	return 0;
}
