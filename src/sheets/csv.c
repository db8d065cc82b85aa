/* SPDX-License-Identifier: MIT */
/*
 * The CSV writer: positions each cell by its row and column, pads rows to
 * the sheet's width, quotes per RFC 4180, and batches output in a 64 KiB
 * buffer so the sink (the content store, a test) sees large writes. Rows
 * are never held: memory is the struct, whatever the sheet's size.
 */
#include "config.h"

#include "sheets/csv.h"

#include <errno.h>
#include <string.h>

void csv_init(struct csv *w, uint32_t width, csv_sink_fn sink, void *ctx)
{
	w->sink = sink;
	w->ctx = ctx;
	w->width = width;
	w->open_row = -1;
	w->next_row = 0;
	w->next_col = 0;
	w->bytes = 0;
	w->len = 0;
}

static int flush(struct csv *w)
{
	int err = 0;

	if (w->len)
		err = w->sink(w->ctx, w->buf, w->len);
	w->bytes += w->len;
	w->len = 0;
	return err;
}

/* Copies n bytes of s, or n copies of c when s is NULL (separators,
 * empty lines), flushing the buffer whenever it fills. */
static int put_bytes(struct csv *w, const char *s, char c, uint64_t n)
{
	while (n) {
		if (w->len == sizeof(w->buf)) {
			int err = flush(w);
			if (err)
				return err;
		}
		size_t room = sizeof(w->buf) - w->len;
		size_t k = n < room ? (size_t)n : room;
		if (s) {
			memcpy(w->buf + w->len, s, k);
			s += k;
		} else {
			memset(w->buf + w->len, c, k);
		}
		w->len += k;
		n -= k;
	}
	return 0;
}

static int put(struct csv *w, const char *s, size_t n)
{
	return put_bytes(w, s, 0, n);
}

static int put_run(struct csv *w, char c, uint64_t n)
{
	return put_bytes(w, NULL, c, n);
}

static int put_char(struct csv *w, char c)
{
	if (w->len == sizeof(w->buf)) {
		int err = flush(w);
		if (err)
			return err;
	}
	w->buf[w->len++] = c;
	return 0;
}

/* Empty fields up to (not including) field col: one comma before each
 * field but the first. */
static int skip_to(struct csv *w, uint32_t col)
{
	if (col <= w->next_col)
		return 0;
	uint64_t commas = col - w->next_col - (w->next_col == 0 ? 1 : 0);
	w->next_col = col;
	return put_run(w, ',', commas);
}

static int end_line(struct csv *w)
{
	int err = skip_to(w, w->width);

	err = err ? err : put_char(w, '\n');
	w->next_row = w->open_row + 1;
	w->open_row = -1;
	w->next_col = 0;
	return err;
}

static int needs_quotes(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
			return 1;
	return 0;
}

static int put_quoted(struct csv *w, const char *s, size_t n)
{
	int err = put_char(w, '"');

	while (!err && n) {
		const char *q = memchr(s, '"', n);
		size_t k = q ? (size_t)(q - s) + 1 : n;
		err = put(w, s, k);
		if (!err && q)
			err = put_char(w, '"'); /* "" inside quotes */
		s += k;
		n -= k;
	}
	return err ? err : put_char(w, '"');
}

int csv_cell(struct csv *w, uint32_t row, uint32_t col, const char *text,
	     size_t len, int quote)
{
	int err = 0;

	if (!len)
		return 0;
	if (col >= w->width || (int64_t)row < w->open_row ||
	    ((int64_t)row == w->open_row && col < w->next_col) ||
	    (w->open_row < 0 && (int64_t)row < w->next_row))
		return -ERANGE;
	if ((int64_t)row != w->open_row) {
		if (w->open_row >= 0)
			err = end_line(w);
		/* Rows without a value since the last line: empty lines. */
		if (!err)
			err = put_run(w, '\n', (uint64_t)row - w->next_row);
		w->open_row = row;
		w->next_col = 0;
	}
	if (!err)
		err = skip_to(w, col);
	if (!err && col > 0)
		err = put_char(w, ',');
	w->next_col = col + 1;
	if (err)
		return err;
	if (quote && needs_quotes(text, len))
		return put_quoted(w, text, len);
	return put(w, text, len);
}

int csv_finish(struct csv *w)
{
	int err = w->open_row >= 0 ? end_line(w) : 0;

	return err ? err : flush(w);
}
