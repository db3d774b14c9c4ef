/* SPDX-License-Identifier: BSD-2-Clause */
/* JSON writer for dinit-userservctl --json; see json.h. */
#include "json.h"

#include <inttypes.h>
#include <stddef.h>

#include "util.h"

void json_init(struct json *j, FILE *out)
{
	j->out = out;
	j->depth = 0;
	j->has_items[0] = false;
	j->after_key = false;
}

static void json_indent(struct json *j, int depth)
{
	fputc('\n', j->out);
	for (int i = 0; i < depth; i++)
		fputs("  ", j->out);
}

/* Called before every value and key: separates it from its predecessor. */
static void json_separate(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth == 0)
		return;
	if (j->has_items[j->depth])
		fputc(',', j->out);
	j->has_items[j->depth] = true;
	json_indent(j, j->depth);
}

static void json_open(struct json *j, char bracket)
{
	json_separate(j);
	fputc(bracket, j->out);
	/* Deeper nesting than we ever produce is a programming error; stay valid anyway. */
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->depth++;
	j->has_items[j->depth] = false;
}

static void json_close(struct json *j, char bracket)
{
	if (j->has_items[j->depth])
		json_indent(j, j->depth - 1);
	if (j->depth > 0)
		j->depth--;
	fputc(bracket, j->out);
}

void json_begin_object(struct json *j)
{
	json_open(j, '{');
}

void json_end_object(struct json *j)
{
	json_close(j, '}');
}

void json_begin_array(struct json *j)
{
	json_open(j, '[');
}

void json_end_array(struct json *j)
{
	json_close(j, ']');
}

/*
 * Length of the well-formed UTF-8 sequence at s (1-4), or 0 when the bytes
 * there are not one (overlong forms, surrogates and code points above
 * U+10FFFF included).
 */
static size_t utf8_sequence_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		unsigned char lo = s[0] == 0xe0 ? 0xa0 : 0x80;
		unsigned char hi = s[0] == 0xed ? 0x9f : 0xbf;
		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
			return 0;
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		unsigned char lo = s[0] == 0xf0 ? 0x90 : 0x80;
		unsigned char hi = s[0] == 0xf4 ? 0x8f : 0xbf;
		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

static void json_write_escaped(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', out);
	while (*s) {
		unsigned char c = *s;
		size_t n;

		switch (c) {
		case '"':
			fputs("\\\"", out);
			s++;
			continue;
		case '\\':
			fputs("\\\\", out);
			s++;
			continue;
		case '\n':
			fputs("\\n", out);
			s++;
			continue;
		case '\t':
			fputs("\\t", out);
			s++;
			continue;
		case '\r':
			fputs("\\r", out);
			s++;
			continue;
		default:
			break;
		}
		if (char_is_control(c)) {
			fprintf(out, "\\u%04x", c);
			s++;
			continue;
		}
		/* The NUL terminator fails every continuation-byte test, so this never reads past it. */
		n = utf8_sequence_len(s);
		if (n == 0) {
			fputs("\\ufffd", out);
			s++;
			continue;
		}
		fwrite(s, 1, n, out);
		s += n;
	}
	fputc('"', out);
}

void json_key(struct json *j, const char *key)
{
	json_separate(j);
	json_write_escaped(j->out, key);
	fputs(": ", j->out);
	j->after_key = true;
}

void json_string(struct json *j, const char *s)
{
	json_separate(j);
	json_write_escaped(j->out, s);
}

void json_string_or_null(struct json *j, const char *s)
{
	if (s[0] == '\0')
		json_null(j);
	else
		json_string(j, s);
}

void json_uint(struct json *j, uint64_t v)
{
	json_separate(j);
	fprintf(j->out, "%" PRIu64, v);
}

void json_int(struct json *j, int64_t v)
{
	json_separate(j);
	fprintf(j->out, "%" PRId64, v);
}

void json_bool(struct json *j, bool v)
{
	json_separate(j);
	fputs(v ? "true" : "false", j->out);
}

void json_null(struct json *j)
{
	json_separate(j);
	fputs("null", j->out);
}

void json_finish(struct json *j)
{
	fputc('\n', j->out);
}
