/* SPDX-License-Identifier: MIT */
#ifndef SPFS_SHEETS_XLSX_H
#define SPFS_SHEETS_XLSX_H

/*
 * Office Open XML workbooks (.xlsx, .xlsm), inside src/sheets only:
 * xlsx_book.c reads the package (relationships, workbook, styles),
 * xlsx_strings.c the shared strings and escapes, xlsx_sheet.c streams one
 * worksheet into the CSV writer.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sheets/archive.h"
#include "sheets/error.h"
#include "sheets/numfmt.h"
#include "sheets/sheets.h"

/* Excel's grid: rows and columns beyond these cannot exist. */
#define XLSX_MAX_ROWS 1048576u
#define XLSX_MAX_COLS 16384u

/* The shared strings table: every string's bytes in one buffer. */
struct xlsx_sst {
	char *bytes;
	uint64_t len, cap;
	uint32_t *offsets; /* n + 1 entries: string i is [off[i], off[i+1]) */
	uint32_t n, capn;
};

struct xlsx_sheet_ref {
	char *name; /* as the workbook has it */
	char *part; /* e.g. xl/worksheets/sheet1.xml */
};

struct xlsx_book {
	struct archive *a;
	const struct sheets_limits *lim;
	bool date1904;
	struct xlsx_sheet_ref *sheets;
	size_t nsheets;
	char *sst_part;	   /* NULL: none */
	char *styles_part; /* NULL: none */
	uint8_t *xf_kind;  /* enum numfmt_kind per cell style (cellXfs) */
	size_t nxf;
	struct xlsx_sst sst;
	bool sst_loaded;
};

/* xlsx_book.c: opens the package and reads the sheet list, the date
 * system and the styles. NULL with e set. */
struct xlsx_book *xlsx_open(const struct sheets_input *in,
			    const struct sheets_limits *lim,
			    struct sheets_error *e);
void xlsx_close(struct xlsx_book *b);

/* xlsx_strings.c: reads the shared strings on first use. 0 or -errno with
 * e set (-EBADMSG past strings_max). */
int xlsx_load_strings(struct xlsx_book *b, struct sheets_error *e);

/* Decodes Office's _xHHHH_ escapes in place (ECMA-376 ST_Xstring: "_x000D_"
 * is CR, "_x005F_" an underscore); returns the new length. Code points that
 * cannot be text (NUL, lone surrogates) become U+FFFD. */
size_t xlsx_unescape(char *s, size_t n);

/* xlsx_sheet.c */
int xlsx_convert(struct xlsx_book *b, size_t i, sheets_sink_fn sink,
		 sheets_rewind_fn rewind, void *ctx, struct sheets_error *e);

#endif
