/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dinit-userservd.conf parser.
 *
 * Syntax: one "key = value" per line; blank lines and lines whose first
 * non-blank character is '#' are ignored ('#' inside a value is part of the
 * value, so "FOO=a#b" works and "debug = yes # on" is a bad value, not a
 * silently ignored comment). Keys and values are trimmed of spaces and tabs.
 * No other control character may appear anywhere, and a line longer than
 * CONFIG_LINE_MAX is an error.
 *
 * Scalar keys: a later line overrides an earlier one. manager_env is
 * repeatable: the manager_env lines of one file together replace whatever
 * list *cfg held before, and a NAME given twice keeps the later VALUE.
 * dinit_service_dirs is one line holding the whole list.
 *
 * config_load parses into a private copy and only commits it to *cfg once the
 * whole file has been read without error.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define CONFIG_LINE_MAX 4096 /* bytes of one line, without its newline */
#define CONFIG_SECONDS_MAX 86400
#define CONFIG_TASKS_MAX 4194304 /* the kernel's PID_MAX_LIMIT */
#define CONFIG_MEMORY_MAX (1ULL << 62) /* bytes; far below overflow */
#define CONFIG_QUOTE_MAX 64 /* bytes of a bad value repeated in an error */

enum config_kind {
	KIND_PATH,    /* absolute path */
	KIND_SOCKET,  /* absolute path that fits in sun_path */
	KIND_BACKEND, /* built-in backend name or absolute path */
	KIND_RUNDIR,  /* absolute path template with %u %g %n %% */
	KIND_BOOL,
	KIND_MANAGE_RUNDIR,
	KIND_LINGER,
	KIND_SECONDS, /* unsigned in [min, max] seconds */
	KIND_NUMBER,  /* unsigned in [min, max] */
	KIND_MIB,     /* unsigned in [min, max] MiB */
	KIND_MEMORY,  /* bytes with an optional K/M/G/T suffix, or N% of RAM */
	KIND_MIB_OR_PERCENT, /* rundir_size: as KIND_MIB, or N% (1-100) into rundir_size_percent */
	KIND_BYTES,   /* unsigned in [min, max] bytes, with an optional K, M or G suffix */
	KIND_DIRS,
	KIND_ENV,
	KIND_CLASSES, /* whitespace-separated session class tokens */
	KIND_PATHS,   /* whitespace-separated absolute paths, one string */
};

struct config_key {
	const char *name;
	enum config_kind kind;
	size_t offset;
	unsigned min, max; /* numeric kinds only */
};

#define KEY(name, kind) { #name, kind, offsetof(struct config, name), 0, 0 }
#define NUM(name, kind, min, max) { #name, kind, offsetof(struct config, name), min, max }

/* Every key, in the order config_dump writes them. */
static const struct config_key config_keys[] = {
	KEY(socket_path, KIND_SOCKET),
	KEY(state_dir, KIND_PATH),
	KEY(linger_dir, KIND_PATH),
	KEY(backend, KIND_BACKEND),
	KEY(rundir_path, KIND_RUNDIR),
	KEY(manage_rundir, KIND_MANAGE_RUNDIR),
	KEY(export_dbus_address, KIND_BOOL),
	NUM(login_timeout, KIND_SECONDS, 0, CONFIG_SECONDS_MAX),
	NUM(stop_delay, KIND_SECONDS, 0, CONFIG_SECONDS_MAX),
	NUM(stop_timeout, KIND_SECONDS, 0, CONFIG_SECONDS_MAX),
	KEY(root_session, KIND_BOOL),
	KEY(linger, KIND_LINGER),
	KEY(debug, KIND_BOOL),
	KEY(syslog, KIND_BOOL),
	NUM(rundir_size, KIND_MIB_OR_PERCENT, 0, 1048576),
	NUM(manager_log_size, KIND_BYTES, 0, 1073741824),
	NUM(restart_limit, KIND_NUMBER, 1, 1000),
	NUM(restart_window, KIND_SECONDS, 1, CONFIG_SECONDS_MAX),
	NUM(max_connections, KIND_NUMBER, 1, 65536),
	NUM(max_connections_per_uid, KIND_NUMBER, 1, 65536),
	KEY(use_cgroups, KIND_BOOL),
	NUM(tasks_max, KIND_NUMBER, 0, CONFIG_TASKS_MAX),
	KEY(memory_max, KIND_MEMORY),
	KEY(dinit_service_dirs, KIND_DIRS),
	KEY(manager_env, KIND_ENV),
	KEY(manager_classes, KIND_CLASSES),
	KEY(user_linger, KIND_BOOL),
	KEY(system_boot_dirs, KIND_PATHS),
};

#define N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const char *const default_service_dirs[] = {
	"~/.config/dinit.d",
	"/etc/dinit.d/user",
	"/usr/local/lib/dinit.d/user",
	"/usr/lib/dinit.d/user",
};

struct parser {
	const char *path;
	unsigned line;
	char *err;
	size_t errlen;
	bool env_seen; /* a manager_env line of this file was applied */
};

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->socket_path, "/run/dinit-userservd/control.sock");
	strcpy(cfg->state_dir, "/run/dinit-userservd");
	strcpy(cfg->linger_dir, "/var/lib/dinit-userservd/linger");
	strcpy(cfg->backend, "dinit");
	strcpy(cfg->rundir_path, "/run/user/%u");
	cfg->manage_rundir = CONFIG_RUNDIR_AUTO;
	cfg->export_dbus_address = true;
	cfg->login_timeout = 60;
	cfg->stop_delay = 10;
	cfg->stop_timeout = 30;
	cfg->root_session = false;
	cfg->linger = CONFIG_LINGER_MAYBE;
	cfg->debug = false;
	cfg->syslog = false;
	cfg->rundir_size = 0;
	cfg->rundir_size_percent = 0;
	cfg->manager_log_size = 1u << 20;
	cfg->restart_limit = 5;
	cfg->restart_window = 60;
	cfg->max_connections = 256;
	cfg->max_connections_per_uid = 16;
	cfg->use_cgroups = true;
	for (size_t i = 0; i < sizeof(default_service_dirs) / sizeof(default_service_dirs[0]); i++)
		strcpy(cfg->dinit_service_dirs[i], default_service_dirs[i]);
	cfg->n_dinit_service_dirs = sizeof(default_service_dirs) / sizeof(default_service_dirs[0]);
	cfg->n_manager_env = 0;
	strcpy(cfg->manager_classes, "user");
	cfg->user_linger = false;
	strcpy(cfg->system_boot_dirs, "/etc/dinit.d/user/boot.d /usr/local/lib/dinit.d/user/boot.d "
		"/usr/lib/dinit.d/user/boot.d");
}

bool config_class_has_manager(const struct config *cfg, const char *cls)
{
	size_t len = strlen(cls);
	for (const char *s = cfg->manager_classes; *s;) {
		size_t n = strcspn(s, " ");
		if (n == len && !strncmp(s, cls, len))
			return true;
		s += n;
		while (*s == ' ')
			s++;
	}
	return false;
}

static void error_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void error_set(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Formats "path:line: message" into the caller's buffer; returns -1. */
static int parser_error(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int parser_error(struct parser *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error_set(p->err, p->errlen, "%s:%u: %s", p->path, p->line, msg);
	return -1;
}

/* A value repeated in an error message, cut to CONFIG_QUOTE_MAX bytes. */
static const char *quote(const char *value, char buf[CONFIG_QUOTE_MAX + 4])
{
	size_t len = strlen(value);
	if (len <= CONFIG_QUOTE_MAX)
		return value;
	memcpy(buf, value, CONFIG_QUOTE_MAX);
	strcpy(buf + CONFIG_QUOTE_MAX, "...");
	return buf;
}

static int bad_value(struct parser *p, const struct config_key *key, const char *value,
		const char *expected)
{
	char q[CONFIG_QUOTE_MAX + 4];
	return parser_error(p, "bad value '%s' for %s: %s", quote(value, q), key->name, expected);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static char *trim(char *s)
{
	while (is_blank(*s))
		s++;
	size_t len = strlen(s);
	while (len > 0 && is_blank(s[len - 1]))
		s[--len] = '\0';
	return s;
}

static bool parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "1")) {
		*out = true;
		return true;
	}
	if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "0")) {
		*out = false;
		return true;
	}
	return false;
}

/* Plain decimal digits only: no sign, no blanks, no base prefix. */
static bool parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *out)
{
	if (*s == '\0')
		return false;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max) /* also keeps v far from overflow */
			return false;
	}
	if (v < min)
		return false;
	*out = (unsigned)v;
	return true;
}

/*
 * A size: digits, then at most one suffix among the first nunits of K, M, G,
 * T (powers of 1024, either case); in [min, max] bytes (or MiB: the caller's
 * unit when nunits is 0). Where percent is not NULL, "N%" (1 to 100) is a
 * size too: *percent = N and *out = 0; else *percent = 0.
 */
static bool parse_size(const char *s, unsigned nunits, uint64_t min, uint64_t max,
	uint64_t *out, unsigned *percent)
{
	static const char units[] = "KMGT";
	size_t n = strspn(s, "0123456789");
	const char *suffix = s + n;
	if (n == 0)
		return false;
	if (percent && !strcmp(suffix, "%")) {
		unsigned v;
		char num[4];
		if (n >= sizeof(num))
			return false;
		memcpy(num, s, n);
		num[n] = '\0';
		if (!parse_unsigned(num, 1, 100, &v))
			return false;
		*out = 0;
		*percent = v;
		return true;
	}
	unsigned shift = 0;
	if (*suffix) {
		const char *u = memchr(units, toupper((unsigned char)*suffix), nunits);
		if (!u || suffix[1])
			return false;
		shift = 10 * (unsigned)(u - units + 1);
	}
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > (max >> shift)) /* also keeps v far from overflow */
			return false;
	}
	v <<= shift;
	if (v < min)
		return false;
	*out = v;
	if (percent)
		*percent = 0;
	return true;
}

static bool env_name_valid(const char *s, size_t len)
{
	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				(c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* Absolute and short enough for a CONFIG_PATH_SIZE field. */
static int check_path(struct parser *p, const struct config_key *key, const char *value)
{
	if (value[0] != '/')
		return bad_value(p, key, value, "expected an absolute path");
	if (strlen(value) >= CONFIG_PATH_SIZE)
		return parser_error(p, "value too long for %s (max %d bytes)", key->name,
			CONFIG_PATH_SIZE - 1);
	return 0;
}

/*
 * Only %u, %g, %n and %% may appear, and %u or %n must: one directory per
 * user, never a directory shared (and chowned) between users.
 */
static int check_rundir(struct parser *p, const struct config_key *key, const char *value)
{
	if (check_path(p, key, value) < 0)
		return -1;
	bool per_user = false;
	for (const char *s = value; *s; s++) {
		if (*s != '%')
			continue;
		s++;
		if (*s == 'u' || *s == 'n')
			per_user = true;
		else if (*s != 'g' && *s != '%')
			return bad_value(p, key, value,
				"only %u, %g, %n and %% may follow '%'");
	}
	if (!per_user)
		return bad_value(p, key, value,
			"expected %u or %n in it (one directory per user)");
	return 0;
}

static int set_dirs(struct parser *p, const struct config_key *key, char *value,
		struct config *c)
{
	memset(c->dinit_service_dirs, 0, sizeof(c->dinit_service_dirs));
	c->n_dinit_service_dirs = 0;
	char *save = NULL;
	for (char *dir = strtok_r(value, " \t", &save); dir; dir = strtok_r(NULL, " \t", &save)) {
		char q[CONFIG_QUOTE_MAX + 4];
		if (dir[0] != '/' && strncmp(dir, "~/", 2) != 0)
			return parser_error(p, "bad directory '%s' in %s: expected an absolute "
				"path or one starting with ~/", quote(dir, q), key->name);
		if (strlen(dir) >= CONFIG_PATH_SIZE)
			return parser_error(p, "directory too long in %s (max %d bytes)",
				key->name, CONFIG_PATH_SIZE - 1);
		if (c->n_dinit_service_dirs == CONFIG_DIRS_MAX)
			return parser_error(p, "too many directories in %s (max %d)",
				key->name, CONFIG_DIRS_MAX);
		strcpy(c->dinit_service_dirs[c->n_dinit_service_dirs++], dir);
	}
	return 0;
}

/* A session class: letters, digits, '-' and '_', at most 31. */
static const char *check_class(const char *w)
{
	size_t n = strlen(w);
	bool ok = n < 32;
	for (size_t i = 0; ok && i < n; i++)
		ok = w[i] == '-' || w[i] == '_' || (w[i] >= 'a' && w[i] <= 'z') ||
			(w[i] >= 'A' && w[i] <= 'Z') || (w[i] >= '0' && w[i] <= '9');
	return ok ? NULL : "expected session classes (letters, digits, '-' and '_', at most 31 each)";
}

static const char *check_abs_path(const char *w)
{
	return w[0] == '/' ? NULL : "expected absolute paths, or none";
}

/*
 * A list of words (manager_classes, system_boot_dirs): split at blanks, each
 * word checked (check says what was expected, or NULL), kept one space apart
 * in field (CONFIG_PATH_SIZE).
 */
static int set_words(struct parser *p, const struct config_key *key, char *value, char *field,
		const char *(*check)(const char *w))
{
	char out[CONFIG_PATH_SIZE] = "";
	size_t used = 0;
	char *save = NULL;
	for (char *w = strtok_r(value, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		size_t n = strlen(w);
		const char *expected = check(w);
		if (expected)
			return bad_value(p, key, w, expected);
		if (used + n + 2 > sizeof(out))
			return parser_error(p, "value too long for %s", key->name);
		if (used)
			out[used++] = ' ';
		memcpy(out + used, w, n + 1);
		used += n;
	}
	memcpy(field, out, sizeof(out));
	return 0;
}

static int set_env(struct parser *p, const struct config_key *key, const char *value,
		struct config *c)
{
	const char *eq = strchr(value, '=');
	if (!eq || !env_name_valid(value, (size_t)(eq - value)))
		return bad_value(p, key, value, "expected NAME=VALUE with NAME of letters, "
			"digits and '_', not starting with a digit");
	if (strlen(value) >= CONFIG_PATH_SIZE)
		return parser_error(p, "value too long for %s (max %d bytes)", key->name,
			CONFIG_PATH_SIZE - 1);
	if (!p->env_seen) {
		memset(c->manager_env, 0, sizeof(c->manager_env));
		c->n_manager_env = 0;
		p->env_seen = true;
	}
	size_t name_len = (size_t)(eq - value) + 1; /* with the '=' */
	for (unsigned i = 0; i < c->n_manager_env; i++) {
		if (!strncmp(c->manager_env[i], value, name_len)) {
			memset(c->manager_env[i], 0, CONFIG_PATH_SIZE);
			strcpy(c->manager_env[i], value);
			return 0;
		}
	}
	if (c->n_manager_env == CONFIG_ENV_MAX)
		return parser_error(p, "too many %s lines (max %d)", key->name, CONFIG_ENV_MAX);
	strcpy(c->manager_env[c->n_manager_env++], value);
	return 0;
}

static int config_set(struct parser *p, const struct config_key *key, char *value,
		struct config *c)
{
	void *field = (char *)c + key->offset;
	bool b;
	unsigned n;
	uint64_t size;
	char range[96];

	switch (key->kind) {
	case KIND_PATH:
		if (check_path(p, key, value) < 0)
			return -1;
		break;
	case KIND_SOCKET:
		if (check_path(p, key, value) < 0)
			return -1;
		if (strlen(value) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return parser_error(p, "value too long for %s (max %zu bytes for a "
				"unix socket)", key->name,
				sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		break;
	case KIND_BACKEND:
		if (strcmp(value, "dinit") && strcmp(value, "runit") && strcmp(value, "s6") &&
				strcmp(value, "none")) {
			if (value[0] != '/')
				return bad_value(p, key, value,
					"expected dinit, runit, s6, none or an absolute path");
			if (check_path(p, key, value) < 0)
				return -1;
		}
		break;
	case KIND_RUNDIR:
		if (check_rundir(p, key, value) < 0)
			return -1;
		break;
	case KIND_BOOL:
		if (!parse_bool(value, &b))
			return bad_value(p, key, value, "expected yes or no");
		*(bool *)field = b;
		return 0;
	case KIND_MANAGE_RUNDIR:
		if (!strcmp(value, "auto"))
			*(enum config_rundir *)field = CONFIG_RUNDIR_AUTO;
		else if (parse_bool(value, &b))
			*(enum config_rundir *)field = b ? CONFIG_RUNDIR_YES : CONFIG_RUNDIR_NO;
		else
			return bad_value(p, key, value, "expected auto, yes or no");
		return 0;
	case KIND_LINGER:
		if (!strcmp(value, "maybe"))
			*(enum config_linger *)field = CONFIG_LINGER_MAYBE;
		else if (parse_bool(value, &b))
			*(enum config_linger *)field = b ? CONFIG_LINGER_YES : CONFIG_LINGER_NO;
		else
			return bad_value(p, key, value, "expected yes, no or maybe");
		return 0;
	case KIND_MIB_OR_PERCENT: /* rundir_size */
	case KIND_BYTES:
		if (!parse_size(value, key->kind == KIND_BYTES ? 3 : 0, key->min, key->max, &size,
			    key->kind == KIND_BYTES ? NULL : &c->rundir_size_percent)) {
			size_t len = strlen(value);
			if (key->kind == KIND_BYTES)
				snprintf(range, sizeof(range), "expected a number of bytes from %u "
					"to %u (K, M, G: binary multiples)", key->min, key->max);
			else if (len > 1 && value[len - 1] == '%')
				snprintf(range, sizeof(range), "expected a percentage from 1%% to 100%%");
			else
				snprintf(range, sizeof(range), "expected a number of MiB from %u to "
					"%u, or N%%", key->min, key->max);
			return bad_value(p, key, value, range);
		}
		*(unsigned *)field = (unsigned)size;
		return 0;
	case KIND_SECONDS:
	case KIND_NUMBER:
	case KIND_MIB:
		if (!parse_unsigned(value, key->min, key->max, &n)) {
			snprintf(range, sizeof(range), "expected a number%s from %u to %u",
				key->kind == KIND_SECONDS ? " of seconds" :
				key->kind == KIND_MIB ? " of MiB" : "",
				key->min, key->max);
			return bad_value(p, key, value, range);
		}
		*(unsigned *)field = n;
		return 0;
	case KIND_MEMORY:
		if (!parse_size(value, 4, 0, CONFIG_MEMORY_MAX, &size, &c->memory_max_percent))
			return bad_value(p, key, value, "expected 0 (no limit), a number of bytes with "
				"an optional K, M, G or T, or N% of RAM (1-100)");
		c->memory_max = size;
		return 0;
	case KIND_DIRS:
		return set_dirs(p, key, value, c);
	case KIND_ENV:
		return set_env(p, key, value, c);
	case KIND_CLASSES:
		return set_words(p, key, value, field, check_class);
	case KIND_PATHS:
		if (!strcmp(value, "none")) /* an empty list */
			value[0] = '\0';
		return set_words(p, key, value, field, check_abs_path);
	}

	/* String kinds, already checked to fit CONFIG_PATH_SIZE. */
	memset(field, 0, CONFIG_PATH_SIZE);
	strcpy(field, value);
	return 0;
}

static const struct config_key *key_find(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (!strcmp(config_keys[i].name, name))
			return &config_keys[i];
	return NULL;
}

/* line holds len bytes (possibly NULs) and room for one more. */
static int parse_line(struct parser *p, char *line, size_t len, struct config *c)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return parser_error(p, "control character 0x%02x in line", ch);
	}
	line[len] = '\0';
	char *s = trim(line);
	if (*s == '\0' || *s == '#')
		return 0;

	char *eq = strchr(s, '=');
	if (!eq)
		return parser_error(p, "expected 'key = value'");
	*eq = '\0';
	char *name = trim(s);
	char *value = trim(eq + 1);
	if (*name == '\0')
		return parser_error(p, "missing key before '='");

	const struct config_key *key = key_find(name);
	if (!key) {
		char q[CONFIG_QUOTE_MAX + 4];
		return parser_error(p, "unknown key '%s'", quote(name, q));
	}
	if (*value == '\0')
		return parser_error(p, "empty value for %s", key->name);
	return config_set(p, key, value, c);
}

/*
 * Reads one line into buf (CONFIG_LINE_MAX + 1 bytes), without its '\n'.
 * Returns 1 and sets *len, 0 at end of file, -1 for a line too long or a
 * read error (ferror tells which).
 */
static int line_read(FILE *f, char *buf, size_t *len)
{
	size_t n = 0;
	int ch;
	while ((ch = getc(f)) != EOF) {
		if (ch == '\n') {
			*len = n;
			return 1;
		}
		if (n == CONFIG_LINE_MAX)
			return -1;
		buf[n++] = (char)ch;
	}
	if (ferror(f))
		return -1;
	*len = n;
	return n > 0 ? 1 : 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		error_set(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct config *c = malloc(sizeof(*c));
	if (!c) {
		error_set(err, errlen, "%s: %s", path, strerror(errno));
		fclose(f);
		return -1;
	}
	memcpy(c, cfg, sizeof(*c));

	struct parser p = { .path = path, .line = 0, .err = err, .errlen = errlen };
	char buf[CONFIG_LINE_MAX + 1];
	size_t len;
	int ret = 0;
	for (;;) {
		p.line++;
		int r = line_read(f, buf, &len);
		if (r == 0)
			break;
		if (r < 0) {
			if (ferror(f))
				error_set(err, errlen, "%s: %s", path, strerror(errno));
			else
				parser_error(&p, "line too long (max %d bytes)", CONFIG_LINE_MAX);
			ret = -1;
			break;
		}
		if (parse_line(&p, buf, len, c) < 0) {
			ret = -1;
			break;
		}
	}
	fclose(f);
	if (ret == 0)
		memcpy(cfg, c, sizeof(*c));
	free(c);
	return ret;
}

void config_dump(const struct config *cfg, FILE *out)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct config_key *key = &config_keys[i];
		const void *field = (const char *)cfg + key->offset;
		switch (key->kind) {
		case KIND_PATH:
		case KIND_SOCKET:
		case KIND_BACKEND:
		case KIND_RUNDIR:
		case KIND_CLASSES:
			fprintf(out, "%s = %s\n", key->name, (const char *)field);
			break;
		case KIND_PATHS:
			fprintf(out, "%s = %s\n", key->name, *(const char *)field ? (const char *)field
				: "none");
			break;
		case KIND_BOOL:
			fprintf(out, "%s = %s\n", key->name, *(const bool *)field ? "yes" : "no");
			break;
		case KIND_MANAGE_RUNDIR: {
			enum config_rundir v = *(const enum config_rundir *)field;
			fprintf(out, "%s = %s\n", key->name, v == CONFIG_RUNDIR_YES ? "yes" :
				v == CONFIG_RUNDIR_NO ? "no" : "auto");
			break;
		}
		case KIND_LINGER: {
			enum config_linger v = *(const enum config_linger *)field;
			fprintf(out, "%s = %s\n", key->name, v == CONFIG_LINGER_YES ? "yes" :
				v == CONFIG_LINGER_NO ? "no" : "maybe");
			break;
		}
		case KIND_SECONDS:
		case KIND_NUMBER:
		case KIND_MIB:
		case KIND_BYTES:
			fprintf(out, "%s = %u\n", key->name, *(const unsigned *)field);
			break;
		case KIND_MEMORY: {
			unsigned long long v = cfg->memory_max;
			const char *unit = "KMGT";
			int shift = -1;
			if (cfg->memory_max_percent) {
				fprintf(out, "%s = %u%%\n", key->name, cfg->memory_max_percent);
				break;
			}
			while (v && !(v & 1023) && shift < 3) {
				v >>= 10;
				shift++;
			}
			if (shift >= 0)
				fprintf(out, "%s = %llu%c\n", key->name, v, unit[shift]);
			else
				fprintf(out, "%s = %llu\n", key->name, v);
			break;
		}
		case KIND_MIB_OR_PERCENT:
			if (cfg->rundir_size_percent)
				fprintf(out, "%s = %u%%\n", key->name, cfg->rundir_size_percent);
			else
				fprintf(out, "%s = %u\n", key->name, *(const unsigned *)field);
			break;
		case KIND_DIRS:
			if (cfg->n_dinit_service_dirs == 0) {
				fprintf(out, "# %s: none\n", key->name);
				break;
			}
			fprintf(out, "%s =", key->name);
			for (unsigned j = 0; j < cfg->n_dinit_service_dirs && j < CONFIG_DIRS_MAX; j++)
				fprintf(out, " %s", cfg->dinit_service_dirs[j]);
			fputc('\n', out);
			break;
		case KIND_ENV:
			/* An empty list cannot be written as a key: say so in a comment. */
			if (cfg->n_manager_env == 0)
				fprintf(out, "# %s: none\n", key->name);
			for (unsigned j = 0; j < cfg->n_manager_env && j < CONFIG_ENV_MAX; j++)
				fprintf(out, "%s = %s\n", key->name, cfg->manager_env[j]);
			break;
		}
	}
}
