/* SPDX-License-Identifier: MIT */
/*
 * The sheet converter end to end on workbooks assembled here with libzip
 * (so every hostile variant is exact): values, layout, the width's second
 * reading, the package's relationships, and every bad-input refusal.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "sheets/sheets.h"

struct mem {
	unsigned char *data;
	size_t len;
	int reads;
};

static int mem_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	struct mem *m = ctx;

	m->reads++;
	if (off + n > m->len)
		return -EIO;
	memcpy(buf, m->data + off, n);
	return 0;
}

/* A zip of name/content pairs (NULL-terminated), deflated. */
static struct mem zip_of(const char *const *files)
{
	zip_error_t ze;
	zip_source_t *src;
	zip_t *z;
	struct mem m = {0};

	zip_error_init(&ze);
	src = zip_source_buffer_create(NULL, 0, 0, &ze);
	assert_non_null(src);
	zip_source_keep(src);
	z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
	assert_non_null(z);
	for (size_t i = 0; files[i]; i += 2) {
		const char *body = files[i + 1];
		zip_source_t *s = zip_source_buffer(z, body, strlen(body), 0);
		assert_non_null(s);
		zip_int64_t idx =
		    zip_file_add(z, files[i], s, ZIP_FL_OVERWRITE);
		assert_true(idx >= 0);
		zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_DEFLATE,
					 9);
	}
	assert_int_equal(zip_close(z), 0);
	zip_stat_t st;
	assert_int_equal(zip_source_stat(src, &st), 0);
	m.len = st.size;
	m.data = malloc(m.len);
	assert_int_equal(zip_source_open(src), 0);
	assert_int_equal(zip_source_read(src, m.data, m.len),
			 (zip_int64_t)m.len);
	zip_source_close(src);
	zip_source_free(src);
	zip_error_fini(&ze);
	return m;
}

static const char RELS[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/"
    "relationships\"><Relationship Id=\"rId1\" Type=\"http://"
    "schemas.openxmlformats.org/officeDocument/2006/relationships/"
    "officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>";

#define NS_MAIN "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
#define NS_R                                                                   \
	"http://schemas.openxmlformats.org/officeDocument/2006/relationships"
#define REL(id, type, target)                                                  \
	"<Relationship Id=\"" id "\" Type=\"" NS_R "/" type                    \
	"\" Target=\"" target "\"/>"

static const char WB_RELS[] =
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/"
    "relationships\">" REL("rId1", "worksheet", "worksheets/sheet1.xml")
	REL("rId2", "sharedStrings", "sharedStrings.xml")
	    REL("rId3", "styles", "styles.xml")
		REL("rId4", "worksheet", "/xl/worksheets/../worksheets/s2.xml")
		    REL("rId5", "chartsheet",
			"chartsheets/c1.xml") "</Relationships>";

static const char WORKBOOK[] =
    "<workbook xmlns=\"" NS_MAIN "\" xmlns:r=\"" NS_R "\">"
    "<workbookPr/><sheets>"
    "<sheet name=\"First &amp; one\" sheetId=\"1\" r:id=\"rId1\"/>"
    "<sheet name=\"Chart\" sheetId=\"3\" r:id=\"rId5\"/>"
    "<sheet name=\"Hidden\" sheetId=\"2\" state=\"hidden\" r:id=\"rId4\"/>"
    "</sheets></workbook>";

static const char SST[] =
    "<sst xmlns=\"" NS_MAIN "\" count=\"4\" uniqueCount=\"4\">"
    "<si><t>plain</t></si>"
    "<si><t xml:space=\"preserve\">a, \"quoted\"\nline </t></si>"
    "<si><r><t>rich</t></r><r><rPr><b/></rPr><t>text</t></r>"
    "<rPh sb=\"0\" eb=\"1\"><t>PHONETIC</t></rPh></si>"
    "<si><t>esc_x000D__x0041__x005F_x0042_</t></si>"
    "</sst>";

static const char STYLES[] =
    "<styleSheet xmlns=\"" NS_MAIN "\">"
    "<numFmts count=\"2\"><numFmt numFmtId=\"164\" formatCode=\"yyyy-mm-dd"
    "\"/><numFmt numFmtId=\"165\" formatCode=\"0.00\"/></numFmts>"
    "<cellStyleXfs count=\"1\"><xf numFmtId=\"14\"/></cellStyleXfs>"
    "<cellXfs count=\"5\"><xf numFmtId=\"0\"/><xf numFmtId=\"164\"/>"
    "<xf numFmtId=\"165\"/><xf numFmtId=\"21\"/><xf numFmtId=\"46\"/>"
    "</cellXfs></styleSheet>";

#define SHEET(dim, rows)                                                       \
	"<worksheet xmlns=\"" NS_MAIN "\">" dim "<sheetData>" rows             \
	"</sheetData></worksheet>"

struct out {
	char *data;
	size_t len;
	int rewinds;
};

static int sink(void *ctx, const char *data, size_t len)
{
	struct out *o = ctx;

	o->data = realloc(o->data, o->len + len + 1);
	memcpy(o->data + o->len, data, len);
	o->len += len;
	o->data[o->len] = '\0';
	return 0;
}

static int rewind_out(void *ctx)
{
	struct out *o = ctx;

	o->len = 0;
	if (o->data)
		o->data[0] = '\0';
	o->rewinds++;
	return 0;
}

/* A one-sheet workbook with sheet1.xml = sheet (extra files replace). */
static struct mem book(const char *sheet, const char *sst)
{
	const char *files[] = {"_rels/.rels",
			       RELS,
			       "xl/workbook.xml",
			       WORKBOOK,
			       "xl/_rels/workbook.xml.rels",
			       WB_RELS,
			       "xl/sharedStrings.xml",
			       sst ? sst : SST,
			       "xl/styles.xml",
			       STYLES,
			       "xl/worksheets/sheet1.xml",
			       sheet,
			       "xl/worksheets/s2.xml",
			       SHEET("", "<row r=\"1\"><c t=\"inlineStr\"><is>"
					 "<t>h</t></is></c></row>"),
			       NULL};
	return zip_of(files);
}

/* Converts sheet 1; returns its errno, the CSV in *csv (malloc'd). */
static int convert(struct mem *m, const struct sheets_limits *lim, char **csv,
		   struct sheets_error *e, int *rewinds)
{
	struct sheets_input in = {m->len, mem_read, m};
	struct out o = {0};
	struct sheets_book *b;
	int err;

	memset(e, 0, sizeof(*e));
	b = sheets_open(&in, lim, e);
	if (!b) {
		*csv = NULL;
		return e->code;
	}
	err = sheets_convert(b, 0, sink, rewind_out, &o, e);
	sheets_close(b);
	*csv = o.data ? o.data : strdup("");
	if (rewinds)
		*rewinds = o.rewinds;
	return err;
}

static void expect_csv(const char *sheet, const char *want, int rewinds)
{
	struct mem m = book(sheet, NULL);
	struct sheets_error e;
	char *csv;
	int rw = -1;

	int err = convert(&m, NULL, &csv, &e, &rw);
	if (err)
		fail_msg("conversion failed: %s", e.why);
	assert_string_equal(csv, want);
	if (rewinds >= 0)
		assert_int_equal(rw, rewinds);
	free(csv);
	free(m.data);
}

static void expect_bad(const char *sheet, const char *sst,
		       const struct sheets_limits *lim, const char *why)
{
	struct mem m = book(sheet, sst);
	struct sheets_error e;
	char *csv;

	assert_int_equal(convert(&m, lim, &csv, &e, NULL), -EBADMSG);
	if (!strstr(e.why, why))
		fail_msg("reason '%s' does not say '%s'", e.why, why);
	free(csv);
	free(m.data);
}

static void test_sheet_list(void **state)
{
	struct mem m = book(SHEET("", ""), NULL);
	struct sheets_input in = {m.len, mem_read, &m};
	struct sheets_error e = {0};
	struct sheets_book *b = sheets_open(&in, NULL, &e);

	(void)state;
	assert_non_null(b);
	/* workbook order, the chart sheet left out, the hidden one kept */
	assert_int_equal(sheets_count(b), 2);
	assert_string_equal(sheets_name(b, 0), "First & one");
	assert_string_equal(sheets_name(b, 1), "Hidden");
	struct out o = {0};
	assert_int_equal(sheets_convert(b, 1, sink, rewind_out, &o, &e), 0);
	assert_string_equal(o.data, "h\n");
	assert_int_equal(sheets_convert(b, 2, sink, rewind_out, &o, &e),
			 -EINVAL);
	free(o.data);
	sheets_close(b);
	free(m.data);
}

static void test_values(void **state)
{
	(void)state;
	expect_csv(
	    SHEET("<dimension ref=\"A1:G2\"/>",
		  "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c>"
		  "<c r=\"B1\" t=\"s\"><v>1</v></c><c r=\"C1\" t=\"s\"><v>2</v>"
		  "</c><c r=\"D1\" t=\"s\"><v>3</v></c>"
		  "<c r=\"E1\" t=\"inlineStr\"><is><t>in</t><rPh><t>x</t></rPh>"
		  "</is></c><c r=\"F1\" t=\"b\"><v>1</v></c>"
		  "<c r=\"G1\" t=\"b\"><v>0</v></c></row>"
		  "<row r=\"2\"><c r=\"A2\" t=\"e\"><v>#N/A</v></c>"
		  "<c r=\"B2\" t=\"str\"><f>A1&amp;\"x\"</f><v>plainx</v></c>"
		  "<c r=\"C2\"><f>1/3</f><v>0.33333333333333331</v></c>"
		  "<c r=\"D2\"><f>NOW()</f></c>"
		  "<c r=\"E2\" s=\"2\"><v>1.50</v></c>"
		  "<c r=\"F2\" t=\"d\"><v>2024-01-31T10:00:00</v></c>"
		  "<c r=\"G2\" t=\"n\"><v>-1E-3</v></c></row>"),
	    "plain,\"a, \"\"quoted\"\"\nline \",richtext,\"esc\rA_x0042_\",in,"
	    "TRUE,FALSE\n"
	    "#N/A,plainx,0.3333333333333333,,1.5,2024-01-31T10:00:00,-0.001\n",
	    0);
}

static void test_dates_from_styles(void **state)
{
	(void)state;
	expect_csv(SHEET("<dimension ref=\"A1:E1\"/>",
			 "<row r=\"1\"><c r=\"A1\" s=\"1\"><v>45351</v></c>"
			 "<c r=\"B1\" s=\"1\"><v>45351.25</v></c>"
			 "<c r=\"C1\" s=\"3\"><v>0.5</v></c>"
			 "<c r=\"D1\" s=\"4\"><v>1.5</v></c>"
			 "<c r=\"E1\" s=\"99\"><v>45351</v></c></row>"),
		   "2024-02-29,2024-02-29T06:00:00,12:00:00,36:00:00,45351\n",
		   0);
}

static void test_layout_and_width(void **state)
{
	(void)state;
	/* Rows 1 and 3 empty, a styled empty cell is no value, leading
	 * empty columns kept. */
	expect_csv(SHEET("<dimension ref=\"A2:C4\"/>",
			 "<row r=\"2\"><c r=\"B2\"><v>1</v></c>"
			 "<c r=\"C2\"><v>2</v></c></row>"
			 "<row r=\"3\"><c r=\"A3\" s=\"2\"/></row>"
			 "<row r=\"4\"><c r=\"C4\"><v>3</v></c></row>"),
		   "\n,1,2\n\n,,3\n", 0);
	/* No dimension: a scan first, then one writing pass. */
	expect_csv(SHEET("", "<row r=\"1\"><c r=\"B1\"><v>1</v></c></row>"
			     "<row r=\"2\"><c r=\"A2\"><v>2</v></c></row>"),
		   ",1\n2,\n", 0);
	/* Overstated: read again at the width the values prove (small
	 * output never reached the sink: no rewind needed). */
	expect_csv(SHEET("<dimension ref=\"A1:Z9\"/>",
			 "<row r=\"1\"><c r=\"A1\"><v>1</v></c>"
			 "<c r=\"C1\" s=\"1\"/></row>"),
		   "1\n", 0);
	/* Understated: likewise. */
	expect_csv(SHEET("<dimension ref=\"A1\"/>",
			 "<row r=\"1\"><c r=\"A1\"><v>1</v></c></row>"
			 "<row r=\"2\"><c r=\"D2\"><v>4</v></c></row>"),
		   "1,,,\n,,,4\n", 0);
	/* Cells and rows without references follow their predecessor. */
	expect_csv(SHEET("", "<row><c><v>1</v></c><c><v>2</v></c></row>"
			     "<row><c r=\"B2\"><v>3</v></c><c><v>4</v></c>"
			     "</row>"),
		   "1,2,\n,3,4\n", 0);
	/* Nothing at all: an empty CSV. */
	expect_csv(SHEET("<dimension ref=\"A1\"/>", "<row r=\"1\"/>"), "", 0);
}

/* Output past the writer's buffer reached the sink before the dimension
 * proved wrong: the sink is rewound and gets the right CSV. */
static void test_wrong_dimension_rewinds(void **state)
{
	char *sheet = malloc(1 << 20), *want = malloc(1 << 20);
	size_t n = 0, w = 0;

	(void)state;
	n += (size_t)sprintf(sheet + n, "<worksheet><dimension ref=\"A1:C1\"/>"
					"<sheetData>");
	for (int r = 1; r <= 20000; r++) {
		n += (size_t)sprintf(sheet + n,
				     "<row r=\"%d\"><c r=\"A%d\"><v>%d</v>"
				     "</c></row>",
				     r, r, r);
		w += (size_t)sprintf(want + w, "%d,\n", r);
	}
	n += (size_t)sprintf(sheet + n, "<row r=\"20001\"><c r=\"B20001\">"
					"<v>1</v></c></row></sheetData>"
					"</worksheet>");
	w += (size_t)sprintf(want + w, ",1\n");
	expect_csv(sheet, want, 1);
	free(sheet);
	free(want);
}

static void test_last_cell_of_the_grid(void **state)
{
	struct mem m = book(SHEET("", "<row r=\"1048576\"><c r=\"XFD1048576\">"
				      "<v>7</v></c></row>"),
			    NULL);
	struct sheets_error e;
	char *csv;

	(void)state;
	assert_int_equal(convert(&m, NULL, &csv, &e, NULL), 0);
	/* 1048575 empty lines, then 16383 commas and the value. */
	size_t len = strlen(csv);
	assert_int_equal(len, 1048575 + 16383 + 2);
	assert_string_equal(csv + len - 3, ",7\n");
	free(csv);
	free(m.data);
}

static void test_strict_and_1904(void **state)
{
	static const char strict_rels[] =
	    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/"
	    "2006/relationships\"><Relationship Id=\"a\" Type=\"http://"
	    "purl.oclc.org/ooxml/officeDocument/relationships/officeDocument\""
	    " Target=\"/book/wb.xml\"/></Relationships>";
	static const char strict_wb_rels[] =
	    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/"
	    "2006/relationships\"><Relationship Id=\"s\" Type=\"http://"
	    "purl.oclc.org/ooxml/officeDocument/relationships/worksheet\" "
	    "Target=\"sheets/one.xml\"/><Relationship Id=\"t\" Type=\"http://"
	    "purl.oclc.org/ooxml/officeDocument/relationships/styles\" "
	    "Target=\"st.xml\"/></Relationships>";
	static const char strict_wb[] =
	    "<x:workbook xmlns:x=\"http://purl.oclc.org/ooxml/spreadsheetml/"
	    "main\" xmlns:r=\"http://purl.oclc.org/ooxml/officeDocument/"
	    "relationships\"><x:workbookPr date1904=\"true\"/><x:sheets>"
	    "<x:sheet name=\"S\" sheetId=\"1\" r:id=\"s\"/></x:sheets>"
	    "</x:workbook>";
	static const char strict_styles[] =
	    "<styleSheet xmlns=\"http://purl.oclc.org/ooxml/spreadsheetml/"
	    "main\"><cellXfs><xf numFmtId=\"0\"/><xf numFmtId=\"14\"/>"
	    "</cellXfs></styleSheet>";
	static const char strict_sheet[] =
	    "<worksheet xmlns=\"http://purl.oclc.org/ooxml/spreadsheetml/"
	    "main\"><sheetData><row r=\"1\"><c r=\"A1\" s=\"1\"><v>0</v></c>"
	    "<c r=\"B1\" s=\"1\"><v>34519</v></c></row></sheetData>"
	    "</worksheet>";
	const char *files[] = {"_rels/.rels",
			       strict_rels,
			       "book/wb.xml",
			       strict_wb,
			       "book/_rels/wb.xml.rels",
			       strict_wb_rels,
			       "book/st.xml",
			       strict_styles,
			       "book/sheets/one.xml",
			       strict_sheet,
			       NULL};
	struct mem m = zip_of(files);
	struct sheets_error e;
	char *csv;

	(void)state;
	assert_int_equal(convert(&m, NULL, &csv, &e, NULL), 0);
	assert_string_equal(csv, "1904-01-01,1998-07-05\n");
	free(csv);
	free(m.data);
}

static void test_hostile_cells(void **state)
{
	(void)state;
	expect_bad(SHEET("", "<row r=\"2147483648\"><c><v>1</v></c></row>"),
		   NULL, NULL, "row 2147483648 is beyond");
	expect_bad(SHEET("<dimension ref=\"A1:B2147483648\"/>", ""), NULL, NULL,
		   "claims rows up to 2147483648");
	expect_bad(SHEET("", "<row r=\"1\"><c r=\"XFE1\"><v>1</v></c></row>"),
		   NULL, NULL, "column beyond");
	expect_bad(SHEET("", "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>4</v></c>"
			     "</row>"),
		   NULL, NULL, "shared string 4 is out of range");
	expect_bad(SHEET("", "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>-1</v></c>"
			     "</row>"),
		   NULL, NULL, "not a number");
	expect_bad(SHEET("", "<row r=\"2\"/><row r=\"1\"/>"), NULL, NULL,
		   "out of order");
	expect_bad(SHEET("", "<row r=\"1\"><c r=\"B1\"><v>1</v></c>"
			     "<c r=\"A1\"><v>1</v></c></row>"),
		   NULL, NULL, "out of order");
	expect_bad(SHEET("", "<row r=\"1\"><c r=\"A2\"><v>1</v></c></row>"),
		   NULL, NULL, "not in its row");
	expect_bad(SHEET("", "<row r=\"1\"><c r=\"A1\"><v>1x</v></c></row>"),
		   NULL, NULL, "holds no number");
	expect_bad(SHEET("", "<row r=\"1\"><c r=\"A1\" t=\"b\"><v>2</v></c>"
			     "</row>"),
		   NULL, NULL, "boolean");
	expect_bad(SHEET("", "<row r=\"1\"><c r=\"A1\" t=\"zz\"><v>2</v></c>"
			     "</row>"),
		   NULL, NULL, "unknown cell type");
	expect_bad(SHEET("", "<c r=\"A1\"><v>2</v></c>"), NULL, NULL,
		   "outside a row");
}

static void test_entities_are_refused(void **state)
{
	(void)state;
	/* A billion laughs: refused at the DOCTYPE, nothing expanded. */
	expect_bad("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol "
		   "\"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;"
		   "&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;"
		   "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
		   "<worksheet><sheetData><row r=\"1\"><c r=\"A1\" "
		   "t=\"inlineStr\"><is><t>&lol3;</t></is></c></row>"
		   "</sheetData></worksheet>",
		   NULL, NULL, "a DOCTYPE");
	/* An external entity: the same. */
	expect_bad("<!DOCTYPE w [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		   "<worksheet><sheetData><row r=\"1\"><c r=\"A1\" "
		   "t=\"inlineStr\"><is><t>&x;</t></is></c></row></sheetData>"
		   "</worksheet>",
		   NULL, NULL, "a DOCTYPE");
	/* A quadratic blowup (libxml2 2.9.14 would deliver it all): one
	 * entity of 10,000 bytes referenced 10,000 times. */
	char *quad = malloc(200000);
	size_t n = (size_t)sprintf(quad, "<!DOCTYPE w [<!ENTITY a \"");
	memset(quad + n, 'x', 10000);
	n += 10000;
	n +=
	    (size_t)sprintf(quad + n, "\">]><worksheet><sheetData><row r=\"1\">"
				      "<c r=\"A1\" t=\"inlineStr\"><is><t>");
	for (int i = 0; i < 10000; i++)
		n += (size_t)sprintf(quad + n, "&a;");
	sprintf(quad + n, "</t></is></c></row></sheetData></worksheet>");
	expect_bad(quad, NULL, NULL, "a DOCTYPE");
	free(quad);
	/* An entity never declared: malformed. */
	expect_bad(SHEET("", "<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is>"
			     "<t>&x;</t></is></c></row>"),
		   NULL, NULL, "malformed XML");
	/* In the shared strings as well. */
	expect_bad(SHEET("", ""),
		   "<!DOCTYPE s [<!ENTITY a \"aaaa\">]><sst><si><t>&a;</t>"
		   "</si></sst>",
		   NULL, "a DOCTYPE");
	expect_bad(SHEET("", "<row r=\"1\"><c r=\"A1\"><v>1</v></row>"), NULL,
		   NULL, "malformed XML");
}

static void test_bounds(void **state)
{
	struct sheets_limits lim = {0};

	(void)state;
	/* The shared strings table is the one thing held: bounded. */
	lim.strings_max = 64;
	expect_bad(SHEET("", ""),
		   "<sst><si><t>0123456789012345678901234567890123456789"
		   "</t></si><si><t>0123456789012345678901234567890123456789"
		   "</t></si></sst>",
		   &lim, "shared strings exceed 64 bytes");
	/* A part inflating past the bound. */
	lim.strings_max = 0;
	lim.part_max = 500;
	expect_bad(SHEET("", "<row r=\"1\"><c r=\"A1\"><v>1</v></c></row>"
			     "<row r=\"2\"><c r=\"A2\"><v>1</v></c></row>"
			     "<row r=\"3\"><c r=\"A3\"><v>1</v></c></row>"
			     "<row r=\"4\"><c r=\"A4\"><v>1</v></c></row>"
			     "<row r=\"5\"><c r=\"A5\"><v>1</v></c></row>"
			     "<row r=\"6\"><c r=\"A6\"><v>1</v></c></row>"
			     "<row r=\"7\"><c r=\"A7\"><v>1</v></c></row>"
			     "<row r=\"8\"><c r=\"A8\"><v>1</v></c></row>"
			     "<row r=\"9\"><c r=\"A9\"><v>1</v></c></row>"
			     "<row r=\"10\"><c r=\"A10\"><v>1</v></c></row>"
			     "<row r=\"11\"><c r=\"A11\"><v>1</v></c></row>"
			     "<row r=\"12\"><c r=\"A12\"><v>1</v></c></row>"),
		   NULL, &lim, "inflates past 500 bytes");
}

static void test_zip_bomb_ratio(void **state)
{
	/* 8 MiB of blanks deflate about 1000:1. */
	size_t n = 8u << 20;
	char *sheet = malloc(n + 200);
	const char *head = "<worksheet><sheetData>";
	size_t k = strlen(head);

	(void)state;
	memcpy(sheet, head, k);
	memset(sheet + k, ' ', n);
	strcpy(sheet + k + n, "</sheetData></worksheet>");
	expect_bad(sheet, NULL, NULL, "inflates more than 100 times");
	free(sheet);
}

static void test_not_workbooks(void **state)
{
	struct sheets_error e;
	char *csv;

	(void)state;
	struct mem m = {(unsigned char *)"PK\3\4 this is no zip at all", 27, 0};
	assert_int_equal(convert(&m, NULL, &csv, &e, NULL), -EBADMSG);
	assert_non_null(strstr(e.why, "zip"));
	struct mem t = {(unsigned char *)"id,name\n1,a\n", 12, 0};
	assert_int_equal(convert(&t, NULL, &csv, &e, NULL), -EBADMSG);
	assert_non_null(strstr(e.why, "neither"));
	struct mem z = {(unsigned char *)"", 0, 0};
	assert_int_equal(convert(&z, NULL, &csv, &e, NULL), -EBADMSG);
	/* A compound file that is no workbook: libfreexl's child says so. */
	unsigned char cfb[2048] = {0xD0, 0xCF, 0x11, 0xE0,
				   0xA1, 0xB1, 0x1A, 0xE1};
	struct mem c = {cfb, sizeof(cfb), 0};
	assert_int_equal(convert(&c, NULL, &csv, &e, NULL), -EBADMSG);
	assert_non_null(strstr(e.why, "libfreexl error"));
	/* A docx is a zip, but no spreadsheet. */
	const char *docx[] = {
	    "_rels/.rels",
	    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/"
	    "2006/relationships\"><Relationship Id=\"r\" Type=\"" NS_R
	    "/officeDocument\" Target=\"word/document.xml\"/></Relationships>",
	    "word/document.xml", "<w:document xmlns:w=\"urn:w\"/>", NULL};
	struct mem d = zip_of(docx);
	assert_int_equal(convert(&d, NULL, &csv, &e, NULL), -EBADMSG);
	assert_non_null(strstr(e.why, "not a spreadsheet"));
	free(d.data);
}

static int failing_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	(void)ctx, (void)buf, (void)n, (void)off;
	return -ETIMEDOUT;
}

static void test_input_errors_are_not_bad_workbooks(void **state)
{
	struct sheets_input in = {4096, failing_read, NULL};
	struct sheets_error e = {0};

	(void)state;
	assert_null(sheets_open(&in, NULL, &e));
	/* Worth retrying: not -EBADMSG. */
	assert_int_equal(e.code, -ETIMEDOUT);
}

static void test_format_of(void **state)
{
	enum sheets_format f;

	(void)state;
	assert_int_equal(sheets_format_of("Book.xlsx", &f), 1);
	assert_int_equal(f, SHEETS_XLSX);
	assert_int_equal(sheets_format_of("BOOK.XLSM", &f), 1);
	assert_int_equal(sheets_format_of("old.Xls", &f), 1);
	assert_int_equal(f, SHEETS_XLS);
	assert_int_equal(sheets_format_of("a.xlsb", &f), 0);
	assert_int_equal(sheets_format_of("xlsx", &f), 0);
	assert_int_equal(sheets_format_of(".xlsx", &f), 0);
	assert_int_equal(sheets_format_of("a.csv", &f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sheet_list),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_dates_from_styles),
	    cmocka_unit_test(test_layout_and_width),
	    cmocka_unit_test(test_wrong_dimension_rewinds),
	    cmocka_unit_test(test_last_cell_of_the_grid),
	    cmocka_unit_test(test_strict_and_1904),
	    cmocka_unit_test(test_hostile_cells),
	    cmocka_unit_test(test_entities_are_refused),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_zip_bomb_ratio),
	    cmocka_unit_test(test_not_workbooks),
	    cmocka_unit_test(test_input_errors_are_not_bad_workbooks),
	    cmocka_unit_test(test_format_of),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
