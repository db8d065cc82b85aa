/* SPDX-License-Identifier: MIT */
/*
 * Converting a workbook version into the content store, and reading it
 * back (keys and layout: sheets_store.h). The workbook's bytes come
 * through the reader (the content cache, downloads as needed); the
 * converter (src/sheets) streams each sheet's CSV into 1 MiB chunks, so
 * memory stays at one chunk whatever the sheet's size. A refusal by the
 * converter (a bad workbook, -EBADMSG) is a result and is stored like
 * one; anything else (a download or the store failing) is an error worth
 * retrying and stores nothing.
 *
 * The manifest is text: "spfs-sheets 1\n", then either "W\t<why>\n" (the
 * workbook was refused) or one line per sheet, "S\t<size>\t<why or
 * empty>\t<file name>\n". Names and reasons never hold tabs or newlines.
 *
 * Threads: called with sheets_view's conversion lock held for conversion;
 * reads from any thread.
 */
#include "config.h"

#include "fs/sheets_store.h"
#include "fs/fs_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "cache/content.h"
#include "cache/meta.h"
#include "fs/reader.h"
#include "sheets/sheets.h"

#define MANIFEST_MAGIC "spfs-sheets 1\n"
#define MANIFEST_MAX   (16u << 20)
#define NAME_MAX_BYTES 200

static uint64_t chunk_index(size_t sheet, uint64_t off)
{
	return ((uint64_t)(sheet + 1) << 32) | (off / SV_CHUNK);
}

int sv_book_keys(struct sv_book *b, const char *item_id, const char *version)
{
	struct buf k;

	memset(b, 0, sizeof(*b));
	buf_init(&k, 4096);
	if (buf_appendf(&k, "%s/sheets", item_id) ||
	    !(b->key_item = buf_detach(&k, NULL)) ||
	    buf_appendf(&k, "%s/csv1", version) ||
	    !(b->key_version = buf_detach(&k, NULL))) {
		buf_release(&k);
		sv_book_release(b);
		return -ENOMEM;
	}
	buf_release(&k);
	return 0;
}

void sv_book_release(struct sv_book *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->sheets[i].name);
		free(b->sheets[i].why);
	}
	free(b->sheets);
	free(b->key_item);
	free(b->key_version);
	free(b->why);
	memset(b, 0, sizeof(*b));
}

/* A reason fit for the manifest and the log: no tabs or newlines. */
static char *reason_dup(const char *why)
{
	char *s = strdup(why);

	for (char *p = s; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return s;
}

/* ---- the manifest -------------------------------------------------------- */

static int manifest_text(const struct sv_book *b, struct buf *out)
{
	int err = buf_append_str(out, MANIFEST_MAGIC);

	if (!err && b->why)
		err = buf_appendf(out, "W\t%s\n", b->why);
	for (size_t i = 0; !err && i < b->n; i++)
		err = buf_appendf(out, "S\t%" PRIu64 "\t%s\t%s\n",
				  b->sheets[i].size,
				  b->sheets[i].why ? b->sheets[i].why : "",
				  b->sheets[i].name);
	return err;
}

static int add_sheet(struct sv_book *b, const char *name, size_t nlen,
		     uint64_t size, const char *why, size_t wlen)
{
	struct sv_sheet *p = realloc(b->sheets, (b->n + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	b->sheets = p;
	p = &b->sheets[b->n];
	memset(p, 0, sizeof(*p));
	p->size = size;
	p->name = strndup(name, nlen);
	p->why = wlen ? strndup(why, wlen) : NULL;
	if (!p->name || (wlen && !p->why)) {
		free(p->name);
		free(p->why);
		return -ENOMEM;
	}
	b->n++;
	return 0;
}

/* Parses a manifest into b (keys kept). -EINVAL when malformed. */
static int manifest_parse(struct sv_book *b, const char *s, size_t n)
{
	size_t m = strlen(MANIFEST_MAGIC);
	const char *end = s + n;
	int err = 0;

	if (n < m || memcmp(s, MANIFEST_MAGIC, m) != 0)
		return -EINVAL;
	for (s += m; !err && s < end;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			return -EINVAL;
		if (s[0] == 'W' && s[1] == '\t' && !b->why && !b->n) {
			b->why = strndup(s + 2, (size_t)(nl - s - 2));
			err = b->why ? 0 : -ENOMEM;
		} else if (s[0] == 'S' && s[1] == '\t' && !b->why) {
			char *t;
			uint64_t size = strtoull(s + 2, &t, 10);
			const char *why = t + 1;
			const char *tab =
			    why <= nl ? memchr(why, '\t', (size_t)(nl - why))
				      : NULL;
			if (t == s + 2 || *t != '\t' || !tab || tab + 1 >= nl)
				return -EINVAL;
			err = add_sheet(b, tab + 1, (size_t)(nl - tab - 1),
					size, why, (size_t)(tab - why));
		} else {
			return -EINVAL;
		}
		s = nl + 1;
	}
	return err;
}

int sv_store_load(struct fs *fs, struct sv_book *b)
{
	struct content_file cf;
	char *text = NULL;
	size_t got = 0;
	int err;

	err = content_file_get(fs->store, b->key_item, b->key_version, &cf);
	if (err)
		return err;
	if (!cf.verified || cf.size == 0 || cf.size > MANIFEST_MAX)
		return -ENOENT;
	text = malloc((size_t)cf.size);
	if (!text)
		return -ENOMEM;
	err = content_read(fs->store, b->key_item, b->key_version, 0, 0, text,
			   (size_t)cf.size);
	got = err ? 0 : (size_t)cf.size;
	if (!err) {
		err = manifest_parse(b, text, got);
		if (err == -EINVAL) {
			log_warn("sheets: a stored sheet list is unreadable; "
				 "converting again");
			err = -ENOENT;
		}
	}
	if (err) {
		/* Keep the keys, drop whatever was parsed. */
		struct sv_book keys = {.key_item = b->key_item,
				       .key_version = b->key_version};
		b->key_item = b->key_version = NULL;
		sv_book_release(b);
		*b = keys;
	}
	free(text);
	return err;
}

/* ---- converting
 * -------------------------------------------------------------- */

struct input {
	struct reader_handle *h;
};

static int read_at(void *ctx, void *buf, size_t n, uint64_t off)
{
	struct input *in = ctx;
	size_t done = 0;

	while (done < n) {
		ssize_t k = reader_read(in->h, (char *)buf + done, n - done,
					off + done);
		if (k < 0)
			return (int)k;
		if (k == 0)
			return -EIO; /* shorter than it said */
		done += (size_t)k;
	}
	return 0;
}

struct sink {
	struct fs *fs;
	const struct sv_book *b;
	size_t sheet;
	uint64_t off; /* bytes handed to the store so far */
	char *chunk;
	size_t len;
	int store_err;
};

static int put_chunk(struct sink *s)
{
	int err =
	    content_put_bytes(s->fs->store, s->b->key_item, s->b->key_version,
			      chunk_index(s->sheet, s->off), s->chunk, s->len);
	if (err) {
		s->store_err = err;
		return err;
	}
	s->off += s->len;
	s->len = 0;
	return 0;
}

static int sink_write(void *ctx, const char *data, size_t len)
{
	struct sink *s = ctx;

	while (len) {
		size_t k = SV_CHUNK - s->len < len ? SV_CHUNK - s->len : len;
		memcpy(s->chunk + s->len, data, k);
		s->len += k;
		data += k;
		len -= k;
		if (s->len == SV_CHUNK) {
			int err = put_chunk(s);
			if (err)
				return err;
		}
	}
	return 0;
}

static int sink_rewind(void *ctx)
{
	struct sink *s = ctx;

	s->off = 0;
	s->len = 0;
	return 0;
}

/* The CSV's file name: the sheet's name with '/' and control characters
 * as '_', cut at a character boundary, "Sheet<N>" when empty, ".csv"
 * added, " (2)", " (3)"... when taken. */
static char *file_name(const struct sv_book *b, const char *sheet, size_t i)
{
	char base[NAME_MAX_BYTES + 32], name[NAME_MAX_BYTES + 48];
	size_t n = 0;

	for (const char *p = sheet; *p && n < NAME_MAX_BYTES; p++)
		base[n++] = *p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f
				? '_'
				: *p;
	if (sheet[n] != '\0')
		while (n > 0 && ((unsigned char)sheet[n] & 0xC0) == 0x80)
			n--; /* do not cut a character in two */
	base[n] = '\0';
	if (!n)
		snprintf(base, sizeof(base), "Sheet%zu", i + 1);
	for (unsigned k = 1;; k++) {
		if (k == 1)
			snprintf(name, sizeof(name), "%s.csv", base);
		else
			snprintf(name, sizeof(name), "%s (%u).csv", base, k);
		size_t j = 0;
		while (j < b->n && strcmp(b->sheets[j].name, name) != 0)
			j++;
		if (j == b->n)
			return strdup(name);
	}
}

/* Stores the manifest last: from then on the version is converted. */
static int store_manifest(struct fs *fs, const struct sv_book *b)
{
	struct buf m;
	int err;

	buf_init(&m, MANIFEST_MAX);
	err = manifest_text(b, &m);
	if (!err)
		err = content_put_bytes(fs->store, b->key_item, b->key_version,
					0, m.data, m.len);
	if (!err) {
		struct content_file cf = {.size = m.len, .verified = 1};
		err = content_file_set(fs->store, b->key_item, b->key_version,
				       &cf);
	}
	buf_release(&m);
	return err;
}

static int convert_sheets(struct fs *fs, struct sheets_book *book,
			  struct sv_book *b, const char *wb_name)
{
	struct sink s = {.fs = fs, .b = b};
	int err = 0;

	s.chunk = malloc(SV_CHUNK);
	if (!s.chunk)
		return -ENOMEM;
	for (size_t i = 0; !err && i < sheets_count(book); i++) {
		struct sheets_error e = {0};
		char *name = file_name(b, sheets_name(book, i), i);
		if (!name) {
			err = -ENOMEM;
			break;
		}
		s.sheet = i;
		s.off = 0;
		s.len = 0;
		s.store_err = 0;
		int rc =
		    sheets_convert(book, i, sink_write, sink_rewind, &s, &e);
		if (!rc && s.len)
			rc = put_chunk(&s);
		if (rc == -EBADMSG) {
			char *why = reason_dup(e.why);
			err = why ? add_sheet(b, name, strlen(name), 0, why,
					      strlen(why))
				  : -ENOMEM;
			free(why);
		} else if (rc) {
			log_warn("sheets: '%s': %s", wb_name,
				 s.store_err ? "the content cache cannot store "
					       "the CSV"
					     : e.why);
			err = s.store_err ? s.store_err : rc;
		} else {
			err = add_sheet(b, name, strlen(name), s.off, NULL, 0);
		}
		free(name);
	}
	free(s.chunk);
	return err;
}

int sv_store_convert(struct fs *fs, const struct meta_item *it,
		     struct sv_book *b)
{
	struct reader_file rf = {.item_id = it->item_id,
				 .version = fs_content_version(it),
				 .quickxorhash = it->quickxorhash,
				 .size = it->size < 0 ? 0 : (uint64_t)it->size};
	struct reader_open_result res;
	struct input in = {0};
	struct sheets_error e = {0};
	struct sheets_book *book = NULL;
	int err;

	err = reader_open(fs->reader, &rf, &in.h, &res);
	if (err) {
		log_warn("sheets: '%s': the workbook cannot be read: %s",
			 it->name, strerror(-err));
		return -EIO;
	}
	struct sheets_input input = {res.size, read_at, &in};
	struct sheets_limits lim = {.tmp_dir = fs->cfg.sheets_tmp_dir};
	content_pin(fs->store, b->key_item);
	book = sheets_open(&input, &lim, &e);
	if (!book && e.code == -EBADMSG) {
		b->why = reason_dup(e.why);
		err = b->why ? 0 : -ENOMEM;
	} else if (!book) {
		log_warn("sheets: '%s': %s", it->name, e.why);
		err = e.code;
	} else {
		err = convert_sheets(fs, book, b, it->name);
	}
	sheets_close(book);
	reader_release(in.h);
	if (!err) {
		err = store_manifest(fs, b);
		if (err)
			log_warn("sheets: '%s': the content cache cannot store "
				 "the sheet list: %s",
				 it->name, strerror(-err));
	}
	content_unpin(fs->store, b->key_item);
	if (err) {
		struct sv_book keys = {.key_item = b->key_item,
				       .key_version = b->key_version};
		b->key_item = b->key_version = NULL;
		sv_book_release(b);
		*b = keys;
		return err == -ENOMEM ? err : -EIO;
	}
	return 0;
}

int sv_store_read(struct fs *fs, const char *key_item, const char *key_version,
		  size_t sheet, uint64_t off, char *buf, size_t n, size_t *got)
{
	size_t done = 0;
	int err = 0;

	while (done < n) {
		uint64_t at = off + done;
		size_t in = (size_t)(at % SV_CHUNK), k = 0;
		size_t want =
		    n - done < SV_CHUNK - in ? n - done : SV_CHUNK - in;
		/* A chunk shorter than the CSV says is -ENOENT. */
		err =
		    content_read(fs->store, key_item, key_version,
				 chunk_index(sheet, at), in, buf + done, want);
		if (err)
			break;
		k = want;
		done += k;
	}
	*got = done;
	return err;
}
