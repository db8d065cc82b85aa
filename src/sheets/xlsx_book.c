/* SPDX-License-Identifier: MIT */
/*
 * The package of an Office Open XML workbook (ECMA-376 Part 1 and Part 2,
 * OPC), read the way the format says rather than by fixed paths: the
 * package relationships name the workbook part, the workbook's own
 * relationships name each sheet's part, the shared strings and the styles.
 * Only worksheets are listed (a <sheet> whose relationship is a chart or
 * dialog sheet has no cells). Element names are matched by local name, so
 * transitional and strict workbooks read alike.
 *
 * What is held: the sheet list and one byte per cell style (its number
 * format's kind); the shared strings are xlsx_strings.c's.
 */
#include "config.h"

#include "sheets/xlsx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sheets/xml.h"

#define MAX_RELS    100000
#define MAX_STYLES  1000000
#define MAX_NUMFMTS 100000

/* ---- small helpers ------------------------------------------------------- */

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static int parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 19)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* A relationship target resolved against its source part's folder (OPC
 * part names: no leading '/', "." and ".." segments removed). */
static char *resolve_target(const char *source, const char *target, size_t n)
{
	char *path = NULL;
	size_t base = 0;

	if (n && target[0] == '/') {
		target++;
		n--;
	} else {
		const char *slash = strrchr(source, '/');
		base = slash ? (size_t)(slash - source) + 1 : 0;
	}
	path = malloc(base + n + 1);
	if (!path)
		return NULL;
	memcpy(path, source, base);
	memcpy(path + base, target, n);
	path[base + n] = '\0';
	/* Remove dot segments in place. */
	char *out = path, *seg = path;
	while (*seg) {
		char *end = strchr(seg, '/');
		size_t len = end ? (size_t)(end - seg) : strlen(seg);
		if (len == 1 && seg[0] == '.') {
		} else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
			if (out > path) {
				out--; /* the '/' */
				while (out > path && out[-1] != '/')
					out--;
			}
		} else if (len) {
			memmove(out, seg, len);
			out += len;
			if (end)
				*out++ = '/';
		}
		seg = end ? end + 1 : seg + len;
	}
	*out = '\0';
	return path;
}

/* ---- relationships --------------------------------------------------------
 */

struct rel {
	char *id, *type, *target; /* target resolved to a part name */
};

struct rels {
	const char *source; /* the part they belong to ("" for the package) */
	struct rel *v;
	size_t n, cap;
	struct sheets_error *e;
};

static int rels_start(void *ctx, const char *name, const struct xml_attrs *at)
{
	struct rels *r = ctx;
	size_t nid, ntype, ntarget, nmode;
	int oom = 0;

	if (strcmp(name, "Relationship") != 0)
		return 0;
	const char *id = xml_attr(at, "Id", 0, &nid);
	const char *type = xml_attr(at, "Type", 0, &ntype);
	const char *mode = xml_attr(at, "TargetMode", 0, &nmode);
	if (!id || !type || !xml_attr(at, "Target", 0, &ntarget) ||
	    (mode && nmode == 8 && memcmp(mode, "External", 8) == 0))
		return 0;
	if (r->n == MAX_RELS)
		return sheets_fail(r->e, -EBADMSG, "more than %d relationships",
				   MAX_RELS);
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct rel *p = realloc(r->v, cap * sizeof(*p));
		if (!p)
			return sheets_fail(r->e, -ENOMEM, "out of memory");
		r->v = p;
		r->cap = cap;
	}
	struct rel *x = &r->v[r->n];
	char *target = xml_attr_dup(at, "Target", 0, &ntarget, &oom);
	x->id = dup_n(id, nid);
	x->type = dup_n(type, ntype);
	x->target = target ? resolve_target(r->source, target, ntarget) : NULL;
	free(target);
	if (!x->id || !x->type || !x->target) {
		free(x->id);
		free(x->type);
		free(x->target);
		return sheets_fail(r->e, -ENOMEM, "out of memory");
	}
	r->n++;
	return 0;
}

static void rels_release(struct rels *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].id);
		free(r->v[i].type);
		free(r->v[i].target);
	}
	free(r->v);
}

/* The relationships of part source ("" for the package's own). A missing
 * relationships part is an empty list. */
static int rels_read(struct archive *a, const char *source, struct rels *r,
		     struct sheets_error *e)
{
	const char *slash = strrchr(source, '/');
	size_t dir = slash ? (size_t)(slash - source) + 1 : 0;
	size_t len =
	    dir + strlen("_rels/") + strlen(source + dir) + strlen(".rels") + 1;
	char *part = malloc(len);
	static const struct xml_handler h = {.start = rels_start};
	int err;

	memset(r, 0, sizeof(*r));
	r->source = source;
	r->e = e;
	if (!part)
		return sheets_fail(e, -ENOMEM, "out of memory");
	snprintf(part, len, "%.*s_rels/%s.rels", (int)dir, source,
		 source + dir);
	err = xml_parse_part(a, part, &h, r, e);
	free(part);
	if (err == -ENOENT)
		return 0;
	if (err) {
		rels_release(r);
		memset(r, 0, sizeof(*r));
	}
	return err;
}

static const struct rel *rel_by_type(const struct rels *r, const char *suffix)
{
	for (size_t i = 0; i < r->n; i++)
		if (ends_with(r->v[i].type, strlen(r->v[i].type), suffix))
			return &r->v[i];
	return NULL;
}

static const struct rel *rel_by_id(const struct rels *r, const char *id,
				   size_t n)
{
	for (size_t i = 0; i < r->n; i++)
		if (strlen(r->v[i].id) == n && memcmp(r->v[i].id, id, n) == 0)
			return &r->v[i];
	return NULL;
}

/* ---- the workbook part ------------------------------------------------------
 */

struct sheet_decl {
	char *name, *rid;
};

struct workbook_read {
	struct xlsx_book *b;
	struct sheets_error *e;
	int depth;
	bool root_seen, in_sheets;
	struct sheet_decl *v;
	size_t n, cap;
};

static int workbook_start(void *ctx, const char *name,
			  const struct xml_attrs *at)
{
	struct workbook_read *w = ctx;
	size_t n, nrid;

	if (w->depth++ == 0) {
		if (strcmp(name, "workbook") != 0)
			return sheets_fail(w->e, -EBADMSG,
					   "the workbook part is not a "
					   "spreadsheet workbook");
		w->root_seen = true;
		return 0;
	}
	if (strcmp(name, "workbookPr") == 0) {
		const char *v = xml_attr(at, "date1904", 0, &n);
		w->b->date1904 = v && ((n == 1 && v[0] == '1') ||
				       (n == 4 && memcmp(v, "true", 4) == 0));
		return 0;
	}
	if (strcmp(name, "sheets") == 0) {
		w->in_sheets = true;
		return 0;
	}
	if (!w->in_sheets || strcmp(name, "sheet") != 0)
		return 0;
	const char *rid = xml_attr(at, "id", 1, &nrid);
	int oom = 0;
	char *sname = xml_attr_dup(at, "name", 0, &n, &oom);
	if (!sname || !rid) {
		free(sname);
		return oom ? sheets_fail(w->e, -ENOMEM, "out of memory")
			   : sheets_fail(w->e, -EBADMSG,
					 "a sheet without a name or "
					 "relationship");
	}
	if (w->n == w->b->lim->sheets_max) {
		free(sname);
		return sheets_fail(w->e, -EBADMSG, "more than %u sheets",
				   w->b->lim->sheets_max);
	}
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		struct sheet_decl *p = realloc(w->v, cap * sizeof(*p));
		if (!p) {
			free(sname);
			return sheets_fail(w->e, -ENOMEM, "out of memory");
		}
		w->v = p;
		w->cap = cap;
	}
	w->v[w->n].name = sname;
	w->v[w->n].rid = dup_n(rid, nrid);
	if (!w->v[w->n].name || !w->v[w->n].rid) {
		free(w->v[w->n].name);
		free(w->v[w->n].rid);
		return sheets_fail(w->e, -ENOMEM, "out of memory");
	}
	w->n++;
	return 0;
}

static int workbook_end(void *ctx, const char *name)
{
	struct workbook_read *w = ctx;

	w->depth--;
	if (strcmp(name, "sheets") == 0)
		w->in_sheets = false;
	return 0;
}

/* ---- styles: which cell styles show dates -----------------------------------
 */

struct numfmt_def {
	uint32_t id;
	uint8_t kind;
};

struct styles_read {
	struct sheets_error *e;
	bool in_numfmts, in_cellxfs;
	struct numfmt_def *fmts;
	size_t nfmts, capfmts;
	uint32_t *xf_fmt;
	size_t nxf, capxf;
};

static int styles_start(void *ctx, const char *name, const struct xml_attrs *at)
{
	struct styles_read *s = ctx;
	size_t n;
	uint64_t id;

	if (strcmp(name, "numFmts") == 0) {
		s->in_numfmts = true;
		return 0;
	}
	if (strcmp(name, "cellXfs") == 0) {
		s->in_cellxfs = true;
		return 0;
	}
	if (s->in_numfmts && strcmp(name, "numFmt") == 0) {
		const char *v = xml_attr(at, "numFmtId", 0, &n);
		size_t ncode;
		const char *code = xml_attr(at, "formatCode", 0, &ncode);
		if (!v || !code || parse_uint(v, n, UINT32_MAX, &id) != 0)
			return 0;
		if (s->nfmts == MAX_NUMFMTS)
			return sheets_fail(s->e, -EBADMSG,
					   "more than %d number formats",
					   MAX_NUMFMTS);
		if (s->nfmts == s->capfmts) {
			size_t cap = s->capfmts ? s->capfmts * 2 : 16;
			struct numfmt_def *p =
			    realloc(s->fmts, cap * sizeof(*p));
			if (!p)
				return sheets_fail(s->e, -ENOMEM,
						   "out of memory");
			s->fmts = p;
			s->capfmts = cap;
		}
		s->fmts[s->nfmts].id = (uint32_t)id;
		s->fmts[s->nfmts].kind = (uint8_t)numfmt_code_kind(code, ncode);
		s->nfmts++;
		return 0;
	}
	if (s->in_cellxfs && strcmp(name, "xf") == 0) {
		const char *v = xml_attr(at, "numFmtId", 0, &n);
		if (!v || parse_uint(v, n, UINT32_MAX, &id) != 0)
			id = 0;
		if (s->nxf == MAX_STYLES)
			return sheets_fail(s->e, -EBADMSG,
					   "more than %d cell styles",
					   MAX_STYLES);
		if (s->nxf == s->capxf) {
			size_t cap = s->capxf ? s->capxf * 2 : 64;
			uint32_t *p = realloc(s->xf_fmt, cap * sizeof(*p));
			if (!p)
				return sheets_fail(s->e, -ENOMEM,
						   "out of memory");
			s->xf_fmt = p;
			s->capxf = cap;
		}
		s->xf_fmt[s->nxf++] = (uint32_t)id;
	}
	return 0;
}

static int styles_end(void *ctx, const char *name)
{
	struct styles_read *s = ctx;

	if (strcmp(name, "numFmts") == 0)
		s->in_numfmts = false;
	else if (strcmp(name, "cellXfs") == 0)
		s->in_cellxfs = false;
	return 0;
}

static int read_styles(struct xlsx_book *b, struct sheets_error *e)
{
	static const struct xml_handler h = {.start = styles_start,
					     .end = styles_end};
	struct styles_read s = {.e = e};
	int err;

	if (!b->styles_part)
		return 0; /* every cell is General */
	err = xml_parse_part(b->a, b->styles_part, &h, &s, e);

	if (err == -ENOENT)
		err = 0;
	if (!err && s.nxf) {
		b->xf_kind = malloc(s.nxf);
		if (!b->xf_kind)
			err = sheets_fail(e, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; !err && i < s.nxf; i++) {
		/* A workbook's own format wins over a built-in id. */
		enum numfmt_kind k = numfmt_builtin_kind(s.xf_fmt[i]);
		for (size_t f = 0; f < s.nfmts; f++)
			if (s.fmts[f].id == s.xf_fmt[i])
				k = (enum numfmt_kind)s.fmts[f].kind;
		b->xf_kind[i] = (uint8_t)k;
	}
	if (!err)
		b->nxf = s.nxf;
	free(s.fmts);
	free(s.xf_fmt);
	return err;
}

/* ---- open / close
 * ------------------------------------------------------------ */

static int find_parts(struct xlsx_book *b, const char *wb_part,
		      struct workbook_read *w, struct sheets_error *e)
{
	struct rels r;
	int err = rels_read(b->a, wb_part, &r, e);

	if (err)
		return err;
	const struct rel *x = rel_by_type(&r, "/sharedStrings");
	if (x && !(b->sst_part = strdup(x->target)))
		err = sheets_fail(e, -ENOMEM, "out of memory");
	x = rel_by_type(&r, "/styles");
	if (!err && x && !(b->styles_part = strdup(x->target)))
		err = sheets_fail(e, -ENOMEM, "out of memory");
	if (!err && w->n && !(b->sheets = calloc(w->n, sizeof(*b->sheets))))
		err = sheets_fail(e, -ENOMEM, "out of memory");
	for (size_t i = 0; !err && i < w->n; i++) {
		x = rel_by_id(&r, w->v[i].rid, strlen(w->v[i].rid));
		if (!x) {
			err = sheets_fail(e, -EBADMSG, "sheet %zu has no part",
					  i + 1);
			break;
		}
		if (!ends_with(x->type, strlen(x->type), "/worksheet"))
			continue; /* a chart, dialog or macro sheet */
		struct xlsx_sheet_ref *s = &b->sheets[b->nsheets];
		s->part = strdup(x->target);
		if (!s->part) {
			err = sheets_fail(e, -ENOMEM, "out of memory");
			break;
		}
		s->name = w->v[i].name;
		w->v[i].name = NULL;
		b->nsheets++;
	}
	rels_release(&r);
	return err;
}

struct xlsx_book *xlsx_open(const struct sheets_input *in,
			    const struct sheets_limits *lim,
			    struct sheets_error *e)
{
	static const struct xml_handler wh = {.start = workbook_start,
					      .end = workbook_end};
	struct xlsx_book *b = calloc(1, sizeof(*b));
	struct workbook_read w = {.e = e};
	struct rels pr = {0};
	char *wb_part = NULL;
	int err = 0;

	if (!b) {
		sheets_fail(e, -ENOMEM, "out of memory");
		return NULL;
	}
	b->lim = lim;
	w.b = b;
	b->a = archive_open(in, lim, e);
	if (!b->a)
		goto fail;
	err = rels_read(b->a, "", &pr, e);
	if (err)
		goto fail;
	const struct rel *doc = rel_by_type(&pr, "/officeDocument");
	wb_part = strdup(doc ? doc->target : "xl/workbook.xml");
	if (!wb_part) {
		sheets_fail(e, -ENOMEM, "out of memory");
		goto fail;
	}
	err = xml_parse_part(b->a, wb_part, &wh, &w, e);
	if (err == -ENOENT)
		sheets_fail(e, -EBADMSG, "no workbook part: not a spreadsheet");
	if (err || e->code)
		goto fail;
	if (!w.root_seen) {
		sheets_fail(e, -EBADMSG, "an empty workbook part");
		goto fail;
	}
	if (find_parts(b, wb_part, &w, e) || read_styles(b, e))
		goto fail;
	goto out;
fail:
	xlsx_close(b);
	b = NULL;
out:
	for (size_t i = 0; i < w.n; i++) {
		free(w.v[i].name);
		free(w.v[i].rid);
	}
	free(w.v);
	rels_release(&pr);
	free(wb_part);
	return b;
}

void xlsx_close(struct xlsx_book *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nsheets; i++) {
		free(b->sheets[i].name);
		free(b->sheets[i].part);
	}
	free(b->sheets);
	free(b->sst_part);
	free(b->styles_part);
	free(b->xf_kind);
	free(b->sst.bytes);
	free(b->sst.offsets);
	archive_close(b->a);
	free(b);
}
