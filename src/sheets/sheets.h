/* SPDX-License-Identifier: MIT */
#ifndef SPFS_SHEETS_SHEETS_H
#define SPFS_SHEETS_SHEETS_H

/*
 * Workbooks as CSV: the worksheets of an .xlsx/.xlsm (Office Open XML) or
 * legacy .xls (BIFF) workbook, each converted to CSV text as its rows are
 * read. Knows nothing of FUSE, Graph or sqlite: the workbook's bytes come
 * through a read callback, the CSV goes to a sink.
 *
 * Memory is bounded whatever the workbook's size: sheets are streamed and
 * written row by row; what is held is the shared strings table (bounded by
 * strings_max), the styles' number formats, and libzip's and libxml2's
 * buffers. For .xls, libfreexl holds one sheet's cells (it caps that table
 * at 256 MiB itself).
 *
 * Every failure is an errno plus one reason in struct sheets_error:
 * -EBADMSG when the workbook is bad (corrupt archive, malformed XML, a zip
 * bomb, entities, out-of-range rows or strings, encrypted), so the caller
 * may remember it for this workbook version; anything else (the input
 * could not be read, no memory, the sink failed) is worth retrying.
 *
 * Thread safety: a book is used by one thread at a time; different books
 * may be converted in parallel.
 */

#include <stddef.h>
#include <stdint.h>

#include "sheets/error.h"

struct sheets_book;

enum sheets_format {
	SHEETS_XLSX, /* .xlsx, .xlsm: a zip of XML parts */
	SHEETS_XLS,  /* .xls: BIFF in a compound file */
};

/* The workbook's bytes: read_at reads exactly n bytes at off (off + n <=
 * size) and returns 0 or a negative errno. */
struct sheets_input {
	uint64_t size;
	int (*read_at)(void *ctx, void *buf, size_t n, uint64_t off);
	void *ctx;
};

/* Bounds against hostile workbooks; 0 takes the default. */
struct sheets_limits {
	uint64_t part_max;    /* inflated bytes of one zip part (4 GiB) */
	uint64_t total_max;   /* inflated bytes of a workbook (16 GiB) */
	uint32_t ratio_max;   /* inflated : compressed of a part past 1 MiB
				 (100, as Apache POI) */
	uint64_t strings_max; /* bytes of shared strings held (64 MiB) */
	uint32_t sheets_max;  /* worksheets (4096) */
	const char *tmp_dir;  /* where an .xls is copied for libfreexl, which
				 reads files only (default /tmp) */
};

/* Opens a workbook and reads its list of worksheets (not their cells).
 * The format is told by the first bytes, not the name (a renamed workbook
 * converts). NULL with e set on failure. The input is borrowed until
 * sheets_close(); limits may be NULL (the defaults). */
struct sheets_book *sheets_open(const struct sheets_input *in,
				const struct sheets_limits *limits,
				struct sheets_error *e);
void sheets_close(struct sheets_book *b);

/* Worksheets in workbook order, hidden ones included (chart sheets and
 * dialog sheets have no cells and are left out). */
size_t sheets_count(const struct sheets_book *b);
/* The sheet's name as the workbook has it (UTF-8), borrowed. */
const char *sheets_name(const struct sheets_book *b, size_t i);

/* The CSV bytes a sink receives; 0 or a negative errno (which stops). */
typedef int (*sheets_sink_fn)(void *ctx, const char *data, size_t len);
/* Rewind: a first attempt's bytes are void, the CSV starts again (a sheet
 * whose declared extent proved wrong is converted twice). 0 or -errno. */
typedef int (*sheets_rewind_fn)(void *ctx);

/* Converts sheet i to CSV (the rules: man spfs, "Workbooks as CSV").
 * 0, or a negative errno with e set. */
int sheets_convert(struct sheets_book *b, size_t i, sheets_sink_fn sink,
		   sheets_rewind_fn rewind, void *ctx, struct sheets_error *e);

/* Whether a file name is a workbook this module converts: .xlsx, .xlsm or
 * .xls, any case. 0 when it is not. */
int sheets_format_of(const char *name, enum sheets_format *format);

#endif
