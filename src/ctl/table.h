/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Aligned text tables for dinit-userservctl's human output.
 *
 * Rows are copied in as they arrive and printed once complete, since a
 * column's width depends on every row. Cells are sanitised on the way in:
 * control characters become '?', so nothing a daemon reply holds can drive
 * the terminal; an empty cell is shown as "-".
 */
#ifndef DUS_CTL_TABLE_H
#define DUS_CTL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct table_column {
	const char *title;
	bool align_right; /* numbers */
};

struct table {
	const struct table_column *columns;
	size_t ncolumns;
	char **cells; /* nrows * ncolumns, row-major */
	size_t nrows;
	size_t capacity; /* rows */
};

void table_init(struct table *t, const struct table_column *columns, size_t ncolumns);
/* Append a row of ncolumns cells. Returns 0, or -1 with errno set. */
int table_add_row(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *out);
void table_finish(struct table *t);

/* A copy of s fit for a terminal: control characters replaced by '?'. */
char *text_sanitize(const char *s);
/* Columns s takes on a terminal (multibyte aware once setlocale was called). */
size_t text_width(const char *s);

#endif
