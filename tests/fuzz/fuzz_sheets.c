/* SPDX-License-Identifier: MIT */
/*
 * The sheet converter on hostile bytes: no crash, no leak, and its
 * promises kept: a refusal says why, every CSV line with a value has the
 * same number of fields, nothing follows the last line.
 *
 * The first byte picks the input: even, the rest is a worksheet's XML put
 * into a fixed workbook (stored, so mutations reach the XML parser whole);
 * odd, the rest is a whole workbook (a zip). Compound files (.xls) are
 * skipped: they go to libfreexl in a child process, not to our parsers.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "sheets/sheets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
	const uint8_t *data;
	size_t len;
};

static int mem_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	const struct mem *m = ctx;

	if (off > m->len || n > m->len - off)
		abort(); /* the converter read past what it was told */
	memcpy(buf, m->data + off, n);
	return 0;
}

struct out {
	char *data;
	size_t len, cap;
};

static int sink(void *ctx, const char *data, size_t len)
{
	struct out *o = ctx;

	if (o->len + len > o->cap) {
		size_t cap = (o->len + len) * 2;
		char *p = realloc(o->data, cap);
		if (!p)
			abort();
		o->data = p;
		o->cap = cap;
	}
	memcpy(o->data + o->len, data, len);
	o->len += len;
	return 0;
}

static int rewind_out(void *ctx)
{
	((struct out *)ctx)->len = 0;
	return 0;
}

/* Lines with a value all have the same number of fields (quotes
 * respected); the CSV is empty or ends with a line that has a value. */
static void check_csv(const struct out *o)
{
	size_t fields = 1, width = 0;
	int quoted = 0, line_has_text = 0, last_line_empty = 1;

	for (size_t i = 0; i < o->len; i++) {
		char c = o->data[i];
		if (quoted) {
			if (c == '"')
				quoted = i + 1 < o->len && o->data[i + 1] == '"'
					     ? (i++, 1)
					     : 0;
			continue;
		}
		if (c == '"') {
			quoted = 1;
			line_has_text = 1;
		} else if (c == ',') {
			fields++;
			line_has_text = 1;
		} else if (c == '\n') {
			if (line_has_text) {
				if (width && fields != width)
					abort();
				width = fields;
			}
			last_line_empty = !line_has_text;
			fields = 1;
			line_has_text = 0;
		} else {
			line_has_text = 1;
		}
	}
	if (quoted || line_has_text || (o->len && last_line_empty))
		abort();
}

static const char *const FIXED[] = {
    "_rels/.rels",
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/"
    "relationships\"><Relationship Id=\"r\" Type=\"http://"
    "schemas.openxmlformats.org/officeDocument/2006/relationships/"
    "officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>",
    "xl/workbook.xml",
    "<workbook xmlns:r=\"urn:r\"><workbookPr date1904=\"0\"/><sheets><sheet "
    "name=\"S\" r:id=\"a\"/></sheets></workbook>",
    "xl/_rels/workbook.xml.rels",
    "<Relationships><Relationship Id=\"a\" Type=\"x/worksheet\" "
    "Target=\"s.xml\"/><Relationship Id=\"b\" Type=\"x/sharedStrings\" "
    "Target=\"sst.xml\"/><Relationship Id=\"c\" Type=\"x/styles\" "
    "Target=\"st.xml\"/></Relationships>",
    "xl/sst.xml",
    "<sst><si><t>a,b</t></si><si><r><t>\"q\"</t></r></si></sst>",
    "xl/st.xml",
    "<styleSheet><numFmts><numFmt numFmtId=\"164\" formatCode=\"yyyy-mm-dd "
    "hh:mm\"/></numFmts><cellXfs><xf numFmtId=\"0\"/><xf numFmtId=\"164\"/>"
    "<xf numFmtId=\"46\"/><xf numFmtId=\"20\"/></cellXfs></styleSheet>",
};

/* The fixed workbook with the input as its sheet: malloc'd zip bytes. */
static uint8_t *with_sheet(const uint8_t *xml, size_t n, size_t *len)
{
	zip_error_t ze;
	zip_source_t *src;
	zip_t *z;
	zip_stat_t st;
	uint8_t *out = NULL;

	zip_error_init(&ze);
	src = zip_source_buffer_create(NULL, 0, 0, &ze);
	if (!src)
		abort();
	zip_source_keep(src);
	z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
	if (!z)
		abort();
	/* Stored, not deflated: no zlib state to set up per run. */
	for (size_t i = 0; i < sizeof(FIXED) / sizeof(FIXED[0]); i += 2) {
		zip_int64_t k = zip_file_add(
		    z, FIXED[i],
		    zip_source_buffer(z, FIXED[i + 1], strlen(FIXED[i + 1]), 0),
		    0);
		zip_set_file_compression(z, (zip_uint64_t)k, ZIP_CM_STORE, 0);
	}
	zip_int64_t idx =
	    zip_file_add(z, "xl/s.xml", zip_source_buffer(z, xml, n, 0), 0);
	zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
	if (zip_close(z) != 0 || zip_source_stat(src, &st) != 0 ||
	    zip_source_open(src) != 0)
		abort();
	out = malloc(st.size ? st.size : 1);
	if (!out || zip_source_read(src, out, st.size) != (zip_int64_t)st.size)
		abort();
	zip_source_close(src);
	zip_source_free(src);
	zip_error_fini(&ze);
	*len = st.size;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t cfb[4] = {0xD0, 0xCF, 0x11, 0xE0};
	/* Small bounds: the fuzzer finds their edges, not our memory's. */
	struct sheets_limits lim = {.part_max = 4u << 20,
				    .total_max = 16u << 20,
				    .strings_max = 1u << 20};
	struct sheets_error e = {0};
	uint8_t *book = NULL;
	struct mem m;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		m = (struct mem){data + 1, size - 1};
		if (m.len >= 4 && memcmp(m.data, cfb, 4) == 0)
			return 0;
	} else {
		size_t len;
		book = with_sheet(data + 1, size - 1, &len);
		m = (struct mem){book, len};
	}
	struct sheets_input in = {m.len, mem_read, &m};
	struct sheets_book *b = sheets_open(&in, &lim, &e);
	if (!b) {
		if (!e.code || !e.why[0])
			abort(); /* a refusal must say why */
	}
	for (size_t i = 0; b && i < sheets_count(b); i++) {
		struct out o = {0};
		memset(&e, 0, sizeof(e));
		if (!sheets_name(b, i))
			abort();
		int err = sheets_convert(b, i, sink, rewind_out, &o, &e);
		if (err && (err != e.code || !e.why[0]))
			abort();
		if (!err)
			check_csv(&o);
		free(o.data);
	}
	sheets_close(b);
	free(book);
	return 0;
}
