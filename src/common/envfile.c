/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * environment.d(5) parser; the syntax is described in envfile.h.
 *
 * Invariant: a line either sets exactly one variable or changes nothing
 * (its value is expanded into a buffer first, and set only when the whole
 * line was good).
 */
#include "envfile.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool name_char(char c, bool first)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(!first && c >= '0' && c <= '9');
}

static ssize_t find_var(const struct envfile_env *env, const char *name, size_t name_len)
{
	for (size_t i = 0; i < env->n; i++)
		if (!strncmp(env->vars[i], name, name_len) && env->vars[i][name_len] == '=')
			return (ssize_t)i;
	return -1;
}

const char *envfile_get(const struct envfile_env *env, const char *name, size_t name_len)
{
	ssize_t i = find_var(env, name, name_len);
	return i < 0 ? NULL : env->vars[i] + name_len + 1;
}

int envfile_set(struct envfile_env *env, const char *name, size_t name_len, const char *value)
{
	size_t vlen = strlen(value);
	char *s = malloc(name_len + vlen + 2);
	if (!s)
		return -1;
	memcpy(s, name, name_len);
	s[name_len] = '=';
	memcpy(s + name_len + 1, value, vlen + 1);
	ssize_t i = find_var(env, name, name_len);
	if (i >= 0) {
		free(env->vars[i]);
		env->vars[i] = s;
		return 0;
	}
	if (env->n >= ENVFILE_VARS_MAX) {
		free(s);
		return -1;
	}
	if (env->n == env->cap) {
		size_t cap = env->cap ? env->cap * 2 : 16;
		char **v = realloc(env->vars, cap * sizeof(*v));
		if (!v) {
			free(s);
			return -1;
		}
		env->vars = v;
		env->cap = cap;
	}
	env->vars[env->n++] = s;
	return 0;
}

void envfile_free(struct envfile_env *env)
{
	for (size_t i = 0; i < env->n; i++)
		free(env->vars[i]);
	free(env->vars);
	env->vars = NULL;
	env->n = env->cap = 0;
}

/* An output buffer that refuses to grow past ENVFILE_VALUE_MAX. */
struct out {
	char buf[ENVFILE_VALUE_MAX + 1];
	size_t len;
	bool overflow;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->overflow || n > ENVFILE_VALUE_MAX - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

/*
 * Expand v[0..len) into o. quoted: inside double quotes (\" and \\ escape
 * too). NULL on success, else why the line is bad.
 */
static const char *expand(const struct envfile_env *env, const char *v, size_t len, bool quoted,
	struct out *o, int depth)
{
	size_t i = 0;
	while (i < len) {
		char c = v[i];
		if (c == '\\' && i + 1 < len &&
			(v[i + 1] == '$' || (quoted && (v[i + 1] == '"' || v[i + 1] == '\\')))) {
			out_put(o, v + i + 1, 1);
			i += 2;
			continue;
		}
		if (quoted && c == '"')
			return "unescaped '\"' inside a quoted value";
		if (c != '$') {
			out_put(o, &c, 1);
			i++;
			continue;
		}
		i++;
		if (i < len && v[i] == '{') {
			size_t start = ++i;
			while (i < len && name_char(v[i], i == start))
				i++;
			size_t nlen = i - start;
			if (nlen == 0)
				return "'${' without a variable name";
			const char *val = envfile_get(env, v + start, nlen);
			if (i < len && v[i] == '}') {
				if (val)
					out_put(o, val, strlen(val));
				i++;
				continue;
			}
			if (i + 1 < len && v[i] == ':' && (v[i + 1] == '-' || v[i + 1] == '+')) {
				bool def = v[i + 1] == '-';
				i += 2;
				/* The word runs to the matching '}' (nesting counted). */
				size_t wstart = i;
				int nest = 0;
				while (i < len && (v[i] != '}' || nest)) {
					if (v[i] == '\\' && i + 1 < len)
						i++;
					else if (v[i] == '{')
						nest++;
					else if (v[i] == '}')
						nest--;
					i++;
				}
				if (i >= len)
					return "'${' without its closing '}'";
				bool set = val && val[0];
				if (def ? !set : set) {
					if (depth >= 8)
						return "expansions nested too deep";
					const char *why = expand(env, v + wstart, i - wstart, quoted, o,
						depth + 1);
					if (why)
						return why;
				} else if (set) {
					out_put(o, val, strlen(val));
				}
				i++;
				continue;
			}
			return "'${' without its closing '}'";
		}
		if (i < len && name_char(v[i], true)) {
			size_t start = i;
			while (i < len && name_char(v[i], i == start))
				i++;
			const char *val = envfile_get(env, v + start, i - start);
			if (val)
				out_put(o, val, strlen(val));
			continue;
		}
		out_put(o, "$", 1); /* a lone '$' stays */
	}
	return NULL;
}

/* One line (without its newline). NULL: good (set), else why it is bad. */
static const char *parse_line(struct envfile_env *env, const char *line, size_t len,
	struct out *o)
{
	size_t i = 0;
	while (i < len && is_blank(line[i]))
		i++;
	if (i == len || line[i] == '#')
		return NULL;
	for (size_t k = 0; k < len; k++)
		if (line[k] == '\0')
			return "a NUL byte in the line";
	size_t name = i;
	while (i < len && name_char(line[i], i == name))
		i++;
	size_t name_len = i - name;
	while (i < len && is_blank(line[i]))
		i++;
	if (i == len || line[i] != '=')
		return name_len ? "expected NAME=VALUE" : "not a variable name";
	if (name_len == 0)
		return "not a variable name";
	i++;
	while (i < len && is_blank(line[i]))
		i++;
	size_t end = len;
	while (end > i && is_blank(line[end - 1]))
		end--;
	const char *v = line + i;
	size_t vlen = end - i;
	const char *why;
	o->len = 0;
	o->overflow = false;
	if (vlen >= 2 && v[0] == '\'' && v[vlen - 1] == '\'') {
		if (memchr(v + 1, '\'', vlen - 2))
			return "a quote inside a single-quoted value";
		out_put(o, v + 1, vlen - 2);
		why = NULL;
	} else if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"' && v[vlen - 2] != '\\') {
		why = expand(env, v + 1, vlen - 2, true, o, 0);
	} else if (vlen && (v[0] == '"' || v[0] == '\'')) {
		return "unterminated quote";
	} else {
		why = expand(env, v, vlen, false, o, 0);
	}
	if (why)
		return why;
	if (o->overflow)
		return "value too long";
	for (size_t k = 0; k < o->len; k++) {
		unsigned char c = (unsigned char)o->buf[k];
		if (c < 0x20 || c == 0x7f)
			return "a control character in the value";
	}
	o->buf[o->len] = '\0';
	if (envfile_set(env, line + name, name_len, o->buf) < 0)
		return "too many variables, or out of memory";
	return NULL;
}

unsigned envfile_parse(struct envfile_env *env, const char *text, size_t len, const char *file,
	envfile_bad_fn bad, void *data)
{
	struct out *o = malloc(sizeof(*o));
	unsigned nbad = 0, lineno = 0;
	size_t pos = 0;
	if (!o) {
		if (bad)
			bad(file, 0, "out of memory", data);
		return 1;
	}
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - (text + pos)) : len - pos;
		lineno++;
		const char *why = parse_line(env, text + pos, llen, o);
		if (why) {
			nbad++;
			if (bad)
				bad(file, lineno, why, data);
		}
		pos += llen + (nl != NULL);
	}
	free(o);
	return nbad;
}
