/* SPDX-License-Identifier: BSD-2-Clause */
/* environment.d for the user's manager; see environment-d.h. */
#include "environment-d.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envfile.h"

#define FILES_MAX 256
#define FILE_SIZE_MAX (256 * 1024)
#define SYSTEM_DIRS "/usr/lib/environment.d:/etc/environment.d"

extern char **environ;

struct conf {
	char name[256];
	char path[4096];
};

static int conf_cmp(const void *a, const void *b)
{
	return strcmp(((const struct conf *)a)->name, ((const struct conf *)b)->name);
}

/* Add dir's *.conf to files; a later directory's file replaces a same-named one. */
static void scan_dir(const char *prog, const char *dir, struct conf *files, size_t *n)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno != ENOENT && errno != ENOTDIR)
			fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".conf") ||
			len >= sizeof(files[0].name))
			continue;
		size_t i;
		for (i = 0; i < *n; i++)
			if (!strcmp(files[i].name, e->d_name))
				break;
		if (i == *n) {
			if (*n == FILES_MAX) {
				fprintf(stderr, "%s: %s: more than %d files, ignoring %s\n", prog, dir,
					FILES_MAX, e->d_name);
				continue;
			}
			(*n)++;
		}
		snprintf(files[i].name, sizeof(files[i].name), "%s", e->d_name);
		snprintf(files[i].path, sizeof(files[i].path), "%s/%s", dir, e->d_name);
	}
	closedir(d);
}

static void report(const char *file, unsigned line, const char *why, void *data)
{
	fprintf(stderr, "%s: %s:%u: %s: line skipped\n", (const char *)data, file, line, why);
}

/* The file's text (at most FILE_SIZE_MAX bytes), or NULL; *len its size. */
static char *read_text(const char *prog, const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return NULL;
	}
	struct stat st;
	char *buf = NULL;
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
		fprintf(stderr, "%s: %s: not a regular file\n", prog, path);
	} else if ((buf = malloc(FILE_SIZE_MAX + 1))) {
		size_t got = 0;
		ssize_t r;
		while (got < FILE_SIZE_MAX && (r = read(fd, buf + got, FILE_SIZE_MAX - got)) > 0)
			got += (size_t)r;
		*len = got;
		if (got == FILE_SIZE_MAX)
			fprintf(stderr, "%s: %s: only the first %d bytes are read\n", prog, path,
				FILE_SIZE_MAX);
	}
	close(fd);
	return buf;
}

void environment_d_apply(const char *prog)
{
	struct conf *files = calloc(FILES_MAX, sizeof(*files));
	if (!files)
		return;
	size_t n = 0;
	const char *sys = getenv("DINIT_USERSERVD_ENVIRONMENT_D");
	char *dirs = strdup(sys ? sys : SYSTEM_DIRS);
	for (char *save = NULL, *d = dirs ? strtok_r(dirs, ":", &save) : NULL; d;
		d = strtok_r(NULL, ":", &save))
		scan_dir(prog, d, files, &n);
	free(dirs);
	char user_dir[4096];
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	if (xdg && xdg[0] == '/')
		snprintf(user_dir, sizeof(user_dir), "%s/environment.d", xdg);
	else if (home && home[0] == '/')
		snprintf(user_dir, sizeof(user_dir), "%s/.config/environment.d", home);
	else
		user_dir[0] = '\0';
	if (user_dir[0])
		scan_dir(prog, user_dir, files, &n);
	qsort(files, n, sizeof(*files), conf_cmp);

	struct envfile_env env = { 0 };
	for (char **e = environ; *e; e++) {
		const char *eq = strchr(*e, '=');
		if (eq)
			envfile_set(&env, *e, (size_t)(eq - *e), eq + 1);
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		char *text = read_text(prog, files[i].path, &len);
		if (!text)
			continue;
		char label[4096 + 64];
		snprintf(label, sizeof(label), "%s", prog);
		envfile_parse(&env, text, len, files[i].path, report, label);
		free(text);
	}
	for (size_t i = 0; i < env.n; i++) {
		char *eq = strchr(env.vars[i], '=');
		*eq = '\0';
		const char *cur = getenv(env.vars[i]);
		if ((!cur || strcmp(cur, eq + 1)) && setenv(env.vars[i], eq + 1, 1) < 0)
			fprintf(stderr, "%s: setenv %s: %s\n", prog, env.vars[i], strerror(errno));
		*eq = '=';
	}
	envfile_free(&env);
	free(files);
}
