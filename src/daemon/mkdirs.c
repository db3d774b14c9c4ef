/* SPDX-License-Identifier: BSD-2-Clause */
#include "mkdirs.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

static int make_upto(const char *path, size_t len)
{
	char buf[PATH_MAX];
	if (len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len);
	buf[len] = '\0';
	/* Most calls find everything there already: one mkdir, not one per
	 * component, unless a parent is missing. */
	if (!len || mkdir(buf, 0755) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -1;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return len && mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

int mkdirs(const char *dir)
{
	return make_upto(dir, strlen(dir));
}

int mkdirs_parents(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash != path ? make_upto(path, (size_t)(slash - path)) : 0;
}
