/* SPDX-License-Identifier: MIT */
/*
 * One worksheet of an Office Open XML workbook, streamed into CSV: each
 * <c> in <sheetData> becomes a field as soon as its </c> is seen; nothing
 * but the current cell's text (at most CELL_TEXT_MAX bytes) is held.
 *
 * The CSV's width (its last column with a value) must be known before the
 * first row is written. The sheet's <dimension> usually says it; when it
 * is absent the sheet is first read without writing (a scan), and when it
 * proves wrong (a value beyond it, or its last columns empty) the sheet is
 * read a second time with the width the first reading found, the sink
 * rewound in between. Writers such as XlsxWriter and openpyxl write exact
 * dimensions, so their sheets are read once.
 *
 * A cell's value by its type: shared string (an index into the table),
 * inline string, formula string, boolean (TRUE/FALSE), error (#N/A...),
 * ISO date text (t="d"), or number, which is a date or time when its
 * style's number format says so. Formulas give their cached value; a
 * formula never calculated has none.
 *
 * Hostile sheets fail with -EBADMSG: rows or columns beyond Excel's grid
 * (XFD1048576, so "2^31 rows" is refused before anything is written for
 * it), rows or cells out of order, a shared string index out of range, a
 * number that is not one, an unknown cell type.
 */
#include "config.h"

#include "sheets/xlsx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sheets/csv.h"
#include "sheets/number.h"
#include "sheets/xml.h"

#define CELL_TEXT_MAX (1u << 20)

enum pass_mode { PASS_WRITE, PASS_SCAN };

struct sheet_run {
	struct xlsx_book *b;
	size_t index;
	struct sheets_error *e;
	struct csv csv;
	enum pass_mode mode;
	int64_t forced_width; /* the second reading's width; -1: none */
	int64_t dim_width;    /* from <dimension>; -1: none */
	bool wrote;	      /* the sink has seen bytes of this reading */
	int64_t max_col;      /* last column holding a value; -1: none */
	/* position */
	bool in_data, in_row;
	int64_t row;	  /* 0-based; -1 before the first */
	int64_t last_col; /* of the current row; -1 before the first */
	/* the current cell */
	bool in_c, in_v, in_is, in_t, have_value;
	int rph;
	char type; /* n s S(tr) i(nlineStr) b e d */
	uint32_t col, style;
	char *text;
	size_t len, cap;
	/* sink wrapper */
	sheets_sink_fn sink;
	void *sink_ctx;
};

/* "AB12" -> column 27 (0-based 27), row 11 (0-based). -EINVAL when it is
 * no reference; -ERANGE beyond Excel's grid (*what names the part). */
static int parse_ref(const char *s, size_t n, uint64_t *col, uint64_t *row,
		     const char **what)
{
	size_t i = 0;
	uint64_t c = 0, r = 0;

	while (i < n &&
	       ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))) {
		c = c * 26 + (uint64_t)((s[i] | 0x20) - 'a' + 1);
		if (c > XLSX_MAX_COLS) {
			*what = "column";
			return -ERANGE;
		}
		i++;
	}
	if (i == 0 || i == n)
		return -EINVAL;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		r = r * 10 + (uint64_t)(s[i] - '0');
		if (r > 0xffffffffffull) {
			*what = "row";
			return -ERANGE;
		}
	}
	if (r == 0)
		return -EINVAL;
	if (r > XLSX_MAX_ROWS) {
		*what = "row";
		*row = r;
		return -ERANGE;
	}
	*col = c - 1;
	*row = r - 1;
	return 0;
}

static int bad(struct sheet_run *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int bad(struct sheet_run *s, const char *fmt, ...)
{
	const char *p = s->b->sheets[s->index].part;
	char part[52], why[140];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	sheets_printable(p, strlen(p), part);
	return sheets_fail(s->e, -EBADMSG, "sheet %zu (%s): %s", s->index + 1,
			   part, why);
}

static int range_error(struct sheet_run *s, const char *what, uint64_t row)
{
	if (strcmp(what, "row") == 0)
		return bad(s, "row %llu is beyond Excel's last row %u",
			   (unsigned long long)row, XLSX_MAX_ROWS);
	return bad(s, "a column beyond Excel's last column XFD");
}

static int on_dimension(struct sheet_run *s, const struct xml_attrs *at)
{
	size_t n;
	const char *ref = xml_attr(at, "ref", 0, &n);
	const char *colon = ref ? memchr(ref, ':', n) : NULL;
	uint64_t col, row;
	const char *what = "row";

	if (!ref)
		return 0;
	const char *last = colon ? colon + 1 : ref;
	size_t nlast = (size_t)(ref + n - last);
	int err = parse_ref(last, nlast, &col, &row, &what);
	if (err == -ERANGE) {
		if (strcmp(what, "row") == 0)
			return bad(s,
				   "the sheet claims rows up to %llu, beyond "
				   "Excel's %u",
				   (unsigned long long)row, XLSX_MAX_ROWS);
		return range_error(s, what, row);
	}
	if (!err)
		s->dim_width = (int64_t)col + 1;
	return 0; /* an unreadable dimension is only a missing hint */
}

static int on_sheet_data(struct sheet_run *s)
{
	int64_t width = s->forced_width >= 0 ? s->forced_width : s->dim_width;

	s->in_data = true;
	s->mode = width >= 0 ? PASS_WRITE : PASS_SCAN;
	csv_init(&s->csv, width >= 0 ? (uint32_t)width : 0, s->sink,
		 s->sink_ctx);
	return 0;
}

static int on_row(struct sheet_run *s, const struct xml_attrs *at)
{
	size_t n;
	const char *r = xml_attr(at, "r", 0, &n);
	uint64_t v = 0;

	if (r) {
		int i = 0;
		for (; (size_t)i < n && r[i] >= '0' && r[i] <= '9' &&
		       v < 1ull << 40;
		     i++)
			v = v * 10 + (uint64_t)(r[i] - '0');
		if ((size_t)i != n || v == 0)
			return bad(s, "a row number that is not one");
		if (v > XLSX_MAX_ROWS)
			return range_error(s, "row", v);
		if ((int64_t)v - 1 <= s->row)
			return bad(s, "row %llu is out of order",
				   (unsigned long long)v);
		s->row = (int64_t)v - 1;
	} else {
		if (s->row + 1 >= (int64_t)XLSX_MAX_ROWS)
			return range_error(s, "row", (uint64_t)s->row + 2);
		s->row++;
	}
	s->in_row = true;
	s->last_col = -1;
	return 0;
}

static int on_cell(struct sheet_run *s, const struct xml_attrs *at)
{
	size_t nt = 0, ns = 0, nr = 0;
	uint64_t col, row = 0;
	const char *what = "row";

	if (!s->in_row)
		return bad(s, "a cell outside a row");
	const char *r = xml_attr(at, "r", 0, &nr);
	const char *t = xml_attr(at, "t", 0, &nt);
	const char *st = xml_attr(at, "s", 0, &ns);
	if (r) {
		int err = parse_ref(r, nr, &col, &row, &what);
		if (err == -ERANGE)
			return range_error(s, what, row + 1);
		if (err || (int64_t)row != s->row)
			return bad(s, "a cell reference that is not in its "
				      "row");
	} else {
		col = (uint64_t)(s->last_col + 1);
		if (col >= XLSX_MAX_COLS)
			return range_error(s, "column", col);
	}
	if ((int64_t)col <= s->last_col)
		return bad(s, "cells out of order in row %llu",
			   (unsigned long long)s->row + 1);
	s->last_col = (int64_t)col;
	s->col = (uint32_t)col;
	s->type = 'n';
	if (t) {
		if (nt == 1 && (t[0] == 'n' || t[0] == 's' || t[0] == 'b' ||
				t[0] == 'e' || t[0] == 'd'))
			s->type = t[0];
		else if (nt == 3 && memcmp(t, "str", 3) == 0)
			s->type = 'S';
		else if (nt == 9 && memcmp(t, "inlineStr", 9) == 0)
			s->type = 'i';
		else
			return bad(s, "an unknown cell type");
	}
	s->style = 0;
	if (st) {
		uint64_t v = 0;
		for (size_t i = 0; i < ns && v <= UINT32_MAX; i++)
			v = st[i] >= '0' && st[i] <= '9'
				? v * 10 + (uint64_t)(st[i] - '0')
				: UINT64_MAX;
		/* An unknown style shows General: the number as it is. */
		s->style = v < s->b->nxf ? (uint32_t)v : UINT32_MAX;
	}
	s->in_c = true;
	s->have_value = false;
	s->len = 0;
	s->rph = 0;
	return 0;
}

static int append_text(struct sheet_run *s, const char *p, size_t n)
{
	if (s->len + n > CELL_TEXT_MAX)
		return bad(s, "a cell's text exceeds %u bytes", CELL_TEXT_MAX);
	if (s->len + n > s->cap) {
		size_t cap = s->cap * 2;
		while (cap < s->len + n)
			cap *= 2;
		char *t = realloc(s->text, cap);
		if (!t)
			return sheets_fail(s->e, -ENOMEM, "out of memory");
		s->text = t;
		s->cap = cap;
	}
	memcpy(s->text + s->len, p, n);
	s->len += n;
	return 0;
}

static int emit(struct sheet_run *s, const char *text, size_t n, int quote)
{
	if (!n)
		return 0; /* no value */
	if ((int64_t)s->col > s->max_col)
		s->max_col = s->col;
	if (s->mode != PASS_WRITE)
		return 0;
	if (s->col >= s->csv.width) {
		/* The dimension was wrong: finish reading to learn the
		 * width, then read again. */
		s->mode = PASS_SCAN;
		return 0;
	}
	uint64_t before = s->csv.bytes;
	int err = csv_cell(&s->csv, (uint32_t)s->row, s->col, text, n, quote);
	if (s->csv.bytes != before)
		s->wrote = true;
	if (err && !s->e->code)
		sheets_fail(s->e, err, "writing the CSV: %s", strerror(-err));
	return err;
}

static int end_cell(struct sheet_run *s)
{
	s->in_c = false;
	if (!s->have_value)
		return 0;
	switch (s->type) {
	case 's': {
		uint64_t idx = 0;
		size_t i = 0;
		for (; i < s->len && s->text[i] >= '0' && s->text[i] <= '9' &&
		       idx <= UINT32_MAX;
		     i++)
			idx = idx * 10 + (uint64_t)(s->text[i] - '0');
		if (i != s->len || !s->len)
			return bad(s, "a shared string index that is not a "
				      "number");
		const struct xlsx_sst *t = &s->b->sst;
		if (idx >= t->n)
			return bad(s,
				   "shared string %llu is out of range (the "
				   "table holds %u)",
				   (unsigned long long)idx, t->n);
		return emit(s, t->bytes + t->offsets[idx],
			    t->offsets[idx + 1] - t->offsets[idx], 1);
	}
	case 'S':
	case 'i':
		return emit(s, s->text, xlsx_unescape(s->text, s->len), 1);
	case 'e':
	case 'd':
		return emit(s, s->text, s->len, 1);
	case 'b':
		if (s->len == 1 && (s->text[0] == '0' || s->text[0] == '1'))
			return s->text[0] == '1' ? emit(s, "TRUE", 4, 0)
						 : emit(s, "FALSE", 5, 0);
		if (s->len == 4 && memcmp(s->text, "true", 4) == 0)
			return emit(s, "TRUE", 4, 0);
		if (s->len == 5 && memcmp(s->text, "false", 5) == 0)
			return emit(s, "FALSE", 5, 0);
		return bad(s, "a boolean that is neither 0 nor 1");
	default: {
		char num[NUMBER_TEXT_MAX], date[NUMFMT_TEXT_MAX];
		double x;
		size_t n;
		enum numfmt_kind kind =
		    s->style != UINT32_MAX && s->style < s->b->nxf
			? (enum numfmt_kind)s->b->xf_kind[s->style]
			: NUMFMT_NUMBER;
		if (!s->len)
			return 0;
		/* The value itself only for a date or time. */
		if (number_parse_format(s->text, s->len,
					kind != NUMFMT_NUMBER ? &x : NULL, num,
					&n) != 0)
			return bad(s, "a number cell that holds no number");
		if (kind != NUMFMT_NUMBER) {
			size_t k = numfmt_format(x, kind, s->b->date1904, date);
			if (k)
				return emit(s, date, k, 0);
		}
		return emit(s, num, n, 0);
	}
	}
}

static int sheet_start(void *ctx, const char *name, const struct xml_attrs *at)
{
	struct sheet_run *s = ctx;

	if (!s->in_data) {
		if (strcmp(name, "dimension") == 0)
			return on_dimension(s, at);
		if (strcmp(name, "sheetData") == 0)
			return on_sheet_data(s);
		return 0;
	}
	if (s->in_c) {
		if (strcmp(name, "v") == 0) {
			s->in_v = true;
			s->len = 0;
		} else if (strcmp(name, "is") == 0) {
			s->in_is = true;
			s->len = 0;
		} else if (strcmp(name, "rPh") == 0) {
			s->rph++;
		} else if (s->in_is && !s->rph && strcmp(name, "t") == 0) {
			s->in_t = true;
		}
		return 0;
	}
	if (strcmp(name, "row") == 0)
		return on_row(s, at);
	if (strcmp(name, "c") == 0)
		return on_cell(s, at);
	return 0;
}

static int sheet_text(void *ctx, const char *p, size_t n)
{
	struct sheet_run *s = ctx;

	if (s->in_v || s->in_t)
		return append_text(s, p, n);
	return 0;
}

static int sheet_end(void *ctx, const char *name)
{
	struct sheet_run *s = ctx;

	if (!s->in_data)
		return 0;
	if (s->in_c) {
		if (strcmp(name, "c") == 0)
			return end_cell(s);
		if (strcmp(name, "v") == 0 && s->in_v) {
			s->in_v = false;
			/* An inline string's value is its <is>. */
			s->have_value = s->type != 'i';
		} else if (strcmp(name, "t") == 0) {
			s->in_t = false;
		} else if (strcmp(name, "rPh") == 0 && s->rph) {
			s->rph--;
		} else if (strcmp(name, "is") == 0 && s->in_is) {
			s->in_is = false;
			s->have_value = s->type == 'i';
		}
		return 0;
	}
	if (strcmp(name, "row") == 0)
		s->in_row = false;
	else if (strcmp(name, "sheetData") == 0)
		s->in_data = false;
	return 0;
}

static int one_reading(struct sheet_run *s)
{
	static const struct xml_handler h = {
	    .start = sheet_start, .end = sheet_end, .text = sheet_text};

	s->mode = PASS_SCAN;
	s->dim_width = -1;
	s->wrote = false;
	s->max_col = -1;
	s->in_data = s->in_row = s->in_c = s->in_v = s->in_is = s->in_t = false;
	s->row = -1;
	s->last_col = -1;
	csv_init(&s->csv, 0, s->sink, s->sink_ctx);
	int err =
	    xml_parse_part(s->b->a, s->b->sheets[s->index].part, &h, s, s->e);
	if (err == -ENOENT)
		return bad(s, "the sheet's part is missing");
	return err;
}

int xlsx_convert(struct xlsx_book *b, size_t i, sheets_sink_fn sink,
		 sheets_rewind_fn rewind, void *ctx, struct sheets_error *e)
{
	struct sheet_run *s = calloc(1, sizeof(*s));
	int err;

	if (s) {
		s->cap = 4096; /* grows to CELL_TEXT_MAX for a long cell */
		s->text = malloc(s->cap);
	}
	if (!s || !s->text) {
		free(s);
		return sheets_fail(e, -ENOMEM, "out of memory");
	}
	s->b = b;
	s->index = i;
	s->e = e;
	s->sink = sink;
	s->sink_ctx = ctx;
	s->forced_width = -1;
	err = xlsx_load_strings(b, e);
	if (!err)
		err = one_reading(s);
	if (err)
		goto out;
	/* Written at the width the values prove: done. */
	if (s->mode == PASS_WRITE && s->max_col + 1 == (int64_t)s->csv.width) {
		err = csv_finish(&s->csv);
		goto out;
	}
	if (s->max_col < 0 && !s->wrote)
		goto out; /* no value at all: an empty CSV */
	if (s->wrote) {
		err = rewind ? rewind(ctx) : -EINVAL;
		if (err) {
			sheets_fail(e, err, "rewinding the CSV: %s",
				    strerror(-err));
			goto out;
		}
	}
	s->forced_width = s->max_col + 1;
	err = one_reading(s);
	if (!err)
		err = csv_finish(&s->csv);
out:
	if (err && !e->code)
		sheets_fail(e, err, "writing the CSV: %s", strerror(-err));
	if (s)
		free(s->text);
	free(s);
	return err;
}
