/* SPDX-License-Identifier: BSD-2-Clause */
#include "linger.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mkdirs.h"

/* A user name usable as a file name in linger_dir. */
static const struct config *config; /* the daemon's: valid and current across reloads */

void linger_init(const struct config *cfg)
{
	config = cfg;
}

static bool name_ok(const char *name)
{
	return name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) < 256;
}

static int mark_path(const char *name, char *out, size_t len)
{
	if (!name_ok(name))
		return -1;
	return snprintf(out, len, "%s/%s", config->linger_dir, name) < (int)len ? 0 : -1;
}

bool linger_marked(const char *name)
{
	char path[2048];
	struct stat st;
	return mark_path(name, path, sizeof(path)) == 0 && lstat(path, &st) == 0 &&
		S_ISREG(st.st_mode);
}

int linger_set(const char *name, bool on, char *err, size_t errlen)
{
	char path[2048];
	if (mark_path(name, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "'%s' cannot be a linger mark", name);
		return -1;
	}
	if (!on) {
		if (unlink(path) < 0 && errno != ENOENT) {
			snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (mkdirs(config->linger_dir) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", config->linger_dir,
			strerror(errno));
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

void linger_foreach(void (*fn)(const char *name, void *data), void *data)
{
	DIR *d = opendir(config->linger_dir);
	if (!d) {
		if (errno != ENOENT)
			log_warn("cannot read %s: %s", config->linger_dir, strerror(errno));
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (name_ok(e->d_name) && linger_marked(e->d_name))
			fn(e->d_name, data);
	closedir(d);
}
