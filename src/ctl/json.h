/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Minimal JSON writer for dinit-userservctl --json.
 *
 * Writes one pretty-printed document to a FILE. The caller nests the calls
 * correctly (keys only inside objects, one value after each key); the writer
 * only tracks where commas and line breaks go. Strings are escaped so the
 * output is always valid JSON in UTF-8, whatever bytes they hold.
 */
#ifndef DUS_CTL_JSON_H
#define DUS_CTL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 8

struct json {
	FILE *out;
	int depth;
	/* has_items[d]: the container at depth d already holds a member */
	bool has_items[JSON_MAX_DEPTH];
	/* a key was just written: the next value goes on the same line */
	bool after_key;
};

void json_init(struct json *j, FILE *out);
void json_begin_object(struct json *j);
void json_end_object(struct json *j);
void json_begin_array(struct json *j);
void json_end_array(struct json *j);
void json_key(struct json *j, const char *key);
void json_string(struct json *j, const char *s);
/* A string, or null when s is empty. */
void json_string_or_null(struct json *j, const char *s);
void json_uint(struct json *j, uint64_t v);
void json_int(struct json *j, int64_t v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* Ends the document with a newline. */
void json_finish(struct json *j);

#endif
