/* SPDX-License-Identifier: MIT */
/*
 * Text in Office Open XML workbooks: the shared strings table, read once
 * per workbook when a sheet needs it and held as one buffer of bytes plus a
 * 32-bit offset per string, bounded by strings_max (bytes plus 4 per
 * string): the one thing the converter holds whatever the sheet's size.
 * Rich text runs are joined, phonetic hints (<rPh>) left out. And Office's
 * _xHHHH_ escapes (ECMA-376 ST_Xstring), decoded in place.
 */
#include "config.h"

#include "sheets/xlsx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sheets/xml.h"

size_t xlsx_unescape(char *s, size_t n)
{
	size_t r = 0, w = 0;

	if (!memchr(s, '_', n))
		return n;
	while (r < n) {
		unsigned cp = 0;
		int ok = s[r] == '_' && r + 6 < n && s[r + 1] == 'x' &&
			 s[r + 6] == '_';
		for (size_t k = 2; ok && k < 6; k++) {
			char c = s[r + k];
			unsigned d =
			    c >= '0' && c <= '9'   ? (unsigned)(c - '0')
			    : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
			    : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
						   : 16u;
			ok = d < 16;
			cp = cp * 16 + d;
		}
		if (!ok) {
			s[w++] = s[r++];
			continue;
		}
		r += 7;
		if (cp >= 0xD800 && cp <= 0xDBFF && r + 6 < n) {
			/* A surrogate pair, written as two escapes. */
			char tmp[8];
			memcpy(tmp, s + r, 7);
			tmp[7] = '\0';
			unsigned lo = 0;
			char *endp = NULL;
			if (tmp[0] == '_' && tmp[1] == 'x' && tmp[6] == '_') {
				tmp[6] = '\0';
				lo = (unsigned)strtoul(tmp + 2, &endp, 16);
			}
			if (endp == tmp + 6 && lo >= 0xDC00 && lo <= 0xDFFF) {
				cp = 0x10000 + ((cp - 0xD800) << 10) +
				     (lo - 0xDC00);
				r += 7;
			}
		}
		if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
			cp = 0xFFFD;
		/* UTF-8; at most 4 bytes for at least 7 consumed. */
		if (cp < 0x80) {
			s[w++] = (char)cp;
		} else if (cp < 0x800) {
			s[w++] = (char)(0xC0 | (cp >> 6));
			s[w++] = (char)(0x80 | (cp & 0x3F));
		} else if (cp < 0x10000) {
			s[w++] = (char)(0xE0 | (cp >> 12));
			s[w++] = (char)(0x80 | ((cp >> 6) & 0x3F));
			s[w++] = (char)(0x80 | (cp & 0x3F));
		} else {
			s[w++] = (char)(0xF0 | (cp >> 18));
			s[w++] = (char)(0x80 | ((cp >> 12) & 0x3F));
			s[w++] = (char)(0x80 | ((cp >> 6) & 0x3F));
			s[w++] = (char)(0x80 | (cp & 0x3F));
		}
	}
	return w;
}

/* ---- shared strings ---------------------------------------------------------
 */

struct sst_read {
	struct xlsx_book *b;
	struct sheets_error *e;
	int in_si, in_t, rph;
	uint64_t start; /* where the current string began */
};

static int sst_grow(struct sst_read *r, uint64_t need)
{
	struct xlsx_sst *t = &r->b->sst;
	uint64_t held = t->len + need + 4ull * ((uint64_t)t->n + 2);

	if (held > r->b->lim->strings_max)
		return sheets_fail(r->e, -EBADMSG,
				   "the shared strings exceed %llu bytes",
				   (unsigned long long)r->b->lim->strings_max);
	if (t->len + need > t->cap) {
		uint64_t cap = t->cap ? t->cap : 64 * 1024;
		while (cap < t->len + need)
			cap *= 2;
		if (cap > r->b->lim->strings_max)
			cap = r->b->lim->strings_max;
		char *p = realloc(t->bytes, (size_t)cap);
		if (!p)
			return sheets_fail(r->e, -ENOMEM, "out of memory");
		t->bytes = p;
		t->cap = cap;
	}
	return 0;
}

static int sst_start(void *ctx, const char *name, const struct xml_attrs *at)
{
	struct sst_read *r = ctx;

	(void)at;
	if (strcmp(name, "si") == 0) {
		r->in_si = 1;
		r->rph = 0;
		r->start = r->b->sst.len;
	} else if (strcmp(name, "rPh") == 0) {
		r->rph++; /* phonetic hints are not the text */
	} else if (r->in_si && !r->rph && strcmp(name, "t") == 0) {
		r->in_t = 1;
	}
	return 0;
}

static int sst_text(void *ctx, const char *s, size_t n)
{
	struct sst_read *r = ctx;
	struct xlsx_sst *t = &r->b->sst;

	if (!r->in_t)
		return 0;
	int err = sst_grow(r, n);
	if (err)
		return err;
	memcpy(t->bytes + t->len, s, n);
	t->len += n;
	return 0;
}

static int sst_end(void *ctx, const char *name)
{
	struct sst_read *r = ctx;
	struct xlsx_sst *t = &r->b->sst;

	if (strcmp(name, "t") == 0) {
		r->in_t = 0;
	} else if (strcmp(name, "rPh") == 0) {
		if (r->rph)
			r->rph--;
	} else if (strcmp(name, "si") == 0 && r->in_si) {
		r->in_si = 0;
		if (t->n == UINT32_MAX - 1)
			return sheets_fail(r->e, -EBADMSG,
					   "too many shared strings");
		if (t->n + 1 >= t->capn) {
			int err = sst_grow(r, 0);
			if (err)
				return err;
			uint32_t cap = t->capn ? t->capn * 2 : 1024;
			uint32_t *p = realloc(t->offsets, cap * sizeof(*p));
			if (!p)
				return sheets_fail(r->e, -ENOMEM,
						   "out of memory");
			t->offsets = p;
			t->capn = cap;
		}
		size_t n = xlsx_unescape(t->bytes + r->start,
					 (size_t)(t->len - r->start));
		t->len = r->start + n;
		t->offsets[t->n] = (uint32_t)r->start;
		t->offsets[++t->n] = (uint32_t)t->len;
	}
	return 0;
}

int xlsx_load_strings(struct xlsx_book *b, struct sheets_error *e)
{
	static const struct xml_handler h = {
	    .start = sst_start, .end = sst_end, .text = sst_text};
	struct sst_read r = {.b = b, .e = e};

	if (b->sst_loaded)
		return 0;
	b->sst_loaded = true;
	if (!b->sst_part)
		return 0;
	int err = xml_parse_part(b->a, b->sst_part, &h, &r, e);
	return err == -ENOENT ? 0 : err;
}
