/* SPDX-License-Identifier: MIT */
#ifndef SPFS_SHEETS_XLS_H
#define SPFS_SHEETS_XLS_H

/*
 * Legacy .xls workbooks through libfreexl, run in a child process with
 * bounded memory and CPU time (xls.c says why). Inside src/sheets only.
 */

#include <stddef.h>

#include "sheets/error.h"
#include "sheets/sheets.h"

struct xls_book;

/* Copies the workbook to an unnamed file in lim->tmp_dir, starts the
 * reader and takes the sheet list. NULL with e set. */
struct xls_book *xls_open(const struct sheets_input *in,
			  const struct sheets_limits *lim,
			  struct sheets_error *e);
void xls_close(struct xls_book *b);
size_t xls_count(const struct xls_book *b);
const char *xls_name(const struct xls_book *b, size_t i);
/* Sheets in ascending order only (-EINVAL otherwise). */
int xls_convert(struct xls_book *b, size_t i, sheets_sink_fn sink, void *ctx,
		struct sheets_error *e);

#endif
