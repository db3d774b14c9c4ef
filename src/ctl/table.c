/* SPDX-License-Identifier: BSD-2-Clause */
/* Aligned text tables; see table.h. */
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "util.h"

/* A bound on rows far above any real host, so a runaway reply cannot eat memory. */
#define TABLE_MAX_ROWS (1u << 20)

void table_init(struct table *t, const struct table_column *columns, size_t ncolumns)
{
	t->columns = columns;
	t->ncolumns = ncolumns;
	t->cells = NULL;
	t->nrows = 0;
	t->capacity = 0;
}

char *text_sanitize(const char *s)
{
	char *copy = strdup(s[0] ? s : "-");

	if (!copy)
		return NULL;
	for (unsigned char *p = (unsigned char *)copy; *p; p++) {
		if (char_is_control(*p))
			*p = '?';
	}
	return copy;
}

size_t text_width(const char *s)
{
	mbstate_t state;
	size_t width = 0;
	size_t left = strlen(s);

	memset(&state, 0, sizeof(state));
	while (left > 0) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, left, &state);
		int w;

		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			/*
			 * Not a character in this locale (say, UTF-8 under LC_ALL=C):
			 * guess a UTF-8 terminal, one cell per lead byte.
			 */
			memset(&state, 0, sizeof(state));
			if (((unsigned char)*s & 0xc0) != 0x80)
				width++;
			s++;
			left--;
			continue;
		}
		w = wcwidth(wc);
		width += w > 0 ? (size_t)w : 0;
		s += n;
		left -= n;
	}
	return width;
}

int table_add_row(struct table *t, const char *const *cells)
{
	char **row;

	if (t->nrows == t->capacity) {
		size_t cap = t->capacity ? t->capacity * 2 : 16;
		char **grown;

		if (cap > TABLE_MAX_ROWS) {
			errno = E2BIG;
			return -1;
		}
		grown = realloc(t->cells, cap * t->ncolumns * sizeof(*grown));
		if (!grown)
			return -1;
		t->cells = grown;
		t->capacity = cap;
	}
	row = t->cells + t->nrows * t->ncolumns;
	for (size_t c = 0; c < t->ncolumns; c++) {
		row[c] = text_sanitize(cells[c]);
		if (!row[c]) {
			while (c-- > 0)
				free(row[c]);
			return -1;
		}
	}
	t->nrows++;
	return 0;
}

static void print_padding(FILE *out, size_t n)
{
	while (n-- > 0)
		fputc(' ', out);
}

static void table_print_row(const struct table *t, FILE *out, const char *const *cells,
	const size_t *widths)
{
	for (size_t c = 0; c < t->ncolumns; c++) {
		size_t pad = widths[c] - text_width(cells[c]);
		bool last = c + 1 == t->ncolumns;

		if (c > 0)
			fputs("  ", out);
		if (t->columns[c].align_right)
			print_padding(out, pad);
		fputs(cells[c], out);
		if (!t->columns[c].align_right && !last)
			print_padding(out, pad);
	}
	fputc('\n', out);
}

void table_print(const struct table *t, FILE *out)
{
	size_t widths[16];
	const char *titles[16];

	/* Our tables have a handful of columns; more would be a programming error. */
	if (t->ncolumns > sizeof(widths) / sizeof(widths[0]))
		abort();
	for (size_t c = 0; c < t->ncolumns; c++) {
		titles[c] = t->columns[c].title;
		widths[c] = text_width(titles[c]);
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncolumns; c++) {
			size_t w = text_width(t->cells[r * t->ncolumns + c]);
			if (w > widths[c])
				widths[c] = w;
		}
	}
	table_print_row(t, out, titles, widths);
	for (size_t r = 0; r < t->nrows; r++)
		table_print_row(t, out, (const char *const *)(t->cells + r * t->ncolumns), widths);
}

void table_finish(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncolumns; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
	t->capacity = 0;
}
