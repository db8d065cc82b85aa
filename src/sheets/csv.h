/* SPDX-License-Identifier: MIT */
#ifndef SPFS_SHEETS_CSV_H
#define SPFS_SHEETS_CSV_H

/*
 * A sheet as CSV text, written as its cells arrive (rows ascending, columns
 * ascending within a row) into a small buffer that is handed to a sink.
 *
 * The layout rules (man spfs, "Workbooks as CSV"):
 *  - line N is the sheet's row N: rows without a value before a row with one
 *    are empty lines; nothing follows the last row with a value;
 *  - a row with a value has exactly `width` fields (the sheet's last column
 *    holding a value anywhere), so trailing empty cells are trimmed the same
 *    way in every row; column A is always the first field;
 *  - RFC 4180 quoting: a field holding a comma, a double quote, CR or LF is
 *    quoted, its quotes doubled; every line ends with LF.
 *
 * Value type: the caller owns the struct (no heap memory); csv_init().
 */

#include <stddef.h>
#include <stdint.h>

/* Receives the CSV bytes in order; 0, or a negative errno that stops the
 * conversion and is returned by the csv_* call that flushed. */
typedef int (*csv_sink_fn)(void *ctx, const char *data, size_t len);

struct csv {
	csv_sink_fn sink;
	void *ctx;
	uint32_t width;	   /* fields in a row with a value */
	int64_t open_row;  /* row whose line is being written; -1: none */
	int64_t next_row;  /* the first row not yet written */
	uint32_t next_col; /* fields written in the open line */
	uint64_t bytes;	   /* handed to the sink so far */
	size_t len;	   /* bytes waiting in buf */
	char buf[64 * 1024];
};

void csv_init(struct csv *w, uint32_t width, csv_sink_fn sink, void *ctx);

/* One cell's text at (row, col), both 0-based, after every cell before it.
 * `quote` 0 promises the text needs no quoting (numbers, dates, booleans);
 * otherwise it is quoted when RFC 4180 needs it. Empty text is no value.
 * 0, -ERANGE (col >= width, or out of order), or the sink's error. */
int csv_cell(struct csv *w, uint32_t row, uint32_t col, const char *text,
	     size_t len, int quote);

/* Ends the last line and hands every byte to the sink. 0 or the sink's
 * error. */
int csv_finish(struct csv *w);

#endif
