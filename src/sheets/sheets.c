/* SPDX-License-Identifier: MIT */
/*
 * The converter's front: fills in the default bounds, tells the two
 * formats apart by their first bytes (a zip is Office Open XML; a compound
 * file is a legacy .xls, or an encrypted Office file, which libfreexl
 * recognises by its missing workbook stream), and dispatches.
 */
#include "config.h"

#include "sheets/sheets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sheets/xls.h"
#include "sheets/xlsx.h"

struct sheets_book {
	struct sheets_limits lim;
	struct xlsx_book *xlsx;
	struct xls_book *xls;
};

static const unsigned char ZIP_MAGIC[4] = {'P', 'K', 3, 4};
static const unsigned char CFB_MAGIC[8] = {0xD0, 0xCF, 0x11, 0xE0,
					   0xA1, 0xB1, 0x1A, 0xE1};

int sheets_format_of(const char *name, enum sheets_format *format)
{
	const char *dot = strrchr(name, '.');

	if (!dot || dot == name)
		return 0;
	if (strcasecmp(dot, ".xlsx") == 0 || strcasecmp(dot, ".xlsm") == 0) {
		*format = SHEETS_XLSX;
		return 1;
	}
	if (strcasecmp(dot, ".xls") == 0) {
		*format = SHEETS_XLS;
		return 1;
	}
	return 0;
}

static void fill_limits(struct sheets_limits *l, const struct sheets_limits *in)
{
	if (in)
		*l = *in;
	else
		memset(l, 0, sizeof(*l));
	if (!l->part_max)
		l->part_max = 4ull << 30;
	if (!l->total_max)
		l->total_max = 16ull << 30;
	if (!l->ratio_max)
		l->ratio_max = 100;
	/* The table's offsets are 32-bit. */
	if (!l->strings_max || l->strings_max > 0xffffffffull)
		l->strings_max = l->strings_max ? 0xffffffffull : 64ull << 20;
	if (!l->sheets_max)
		l->sheets_max = 4096;
	if (!l->tmp_dir)
		l->tmp_dir = "/tmp";
}

struct sheets_book *sheets_open(const struct sheets_input *in,
				const struct sheets_limits *limits,
				struct sheets_error *e)
{
	struct sheets_book *b = calloc(1, sizeof(*b));
	unsigned char head[8] = {0};
	int err;

	if (!b) {
		sheets_fail(e, -ENOMEM, "out of memory");
		return NULL;
	}
	fill_limits(&b->lim, limits);
	if (in->size < sizeof(head)) {
		sheets_fail(e, -EBADMSG, "%s",
			    in->size ? "too short for a workbook"
				     : "an empty file");
		goto fail;
	}
	err = in->read_at(in->ctx, head, sizeof(head), 0);
	if (err) {
		sheets_fail(e, err, "the workbook could not be read: %s",
			    strerror(-err));
		goto fail;
	}
	if (memcmp(head, ZIP_MAGIC, sizeof(ZIP_MAGIC)) == 0)
		b->xlsx = xlsx_open(in, &b->lim, e);
	else if (memcmp(head, CFB_MAGIC, sizeof(CFB_MAGIC)) == 0)
		b->xls = xls_open(in, &b->lim, e);
	else
		sheets_fail(e, -EBADMSG,
			    "neither a zip (.xlsx) nor a compound file (.xls)");
	if (b->xlsx || b->xls)
		return b;
fail:
	free(b);
	return NULL;
}

void sheets_close(struct sheets_book *b)
{
	if (!b)
		return;
	xlsx_close(b->xlsx);
	xls_close(b->xls);
	free(b);
}

size_t sheets_count(const struct sheets_book *b)
{
	return b->xlsx ? b->xlsx->nsheets : xls_count(b->xls);
}

const char *sheets_name(const struct sheets_book *b, size_t i)
{
	return b->xlsx ? b->xlsx->sheets[i].name : xls_name(b->xls, i);
}

int sheets_convert(struct sheets_book *b, size_t i, sheets_sink_fn sink,
		   sheets_rewind_fn rewind, void *ctx, struct sheets_error *e)
{
	if (i >= sheets_count(b))
		return sheets_fail(e, -EINVAL, "no sheet %zu", i + 1);
	if (b->xlsx)
		return xlsx_convert(b->xlsx, i, sink, rewind, ctx, e);
	return xls_convert(b->xls, i, sink, ctx, e);
}
