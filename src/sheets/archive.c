/* SPDX-License-Identifier: MIT */
/*
 * libzip over a read callback. libzip does the zip format (central
 * directory, local headers, inflate, CRC); this file adds what a zip bomb
 * needs: every inflated byte is counted against the part's and the
 * workbook's bounds and against the part's compressed size, so a hostile
 * archive costs bounded time and no memory. ZIP_CHECKCONS makes libzip
 * compare each local header with the central directory at open.
 */
#include "config.h"

#include "sheets/archive.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

struct archive {
	const struct sheets_input *in;
	const struct sheets_limits *lim;
	zip_t *zip;
	uint64_t pos;	 /* the source's read position */
	uint64_t total;	 /* inflated bytes of every part so far */
	zip_error_t err; /* the source's last error */
	int read_errno;	 /* why the callback failed, when it did */
};

struct archive_part {
	struct archive *a;
	zip_file_t *f;
	char name[52]; /* printable, for reasons */
	uint64_t inflated, compressed;
};

#define RATIO_GRACE (1u << 20)

/* The zip_source callback: the workbook as a seekable, read-only stream. */
static zip_int64_t source_cb(void *ud, void *data, zip_uint64_t len,
			     zip_source_cmd_t cmd)
{
	struct archive *a = ud;

	switch (cmd) {
	case ZIP_SOURCE_OPEN:
		a->pos = 0;
		return 0;
	case ZIP_SOURCE_READ: {
		uint64_t left = a->in->size - a->pos;
		size_t n = len < left ? (size_t)len : (size_t)left;
		if (n) {
			int err = a->in->read_at(a->in->ctx, data, n, a->pos);
			if (err) {
				a->read_errno = err;
				zip_error_set(&a->err, ZIP_ER_READ, -err);
				return -1;
			}
		}
		a->pos += n;
		return (zip_int64_t)n;
	}
	case ZIP_SOURCE_CLOSE:
		return 0;
	case ZIP_SOURCE_STAT: {
		zip_stat_t *st = data;
		zip_stat_init(st);
		st->size = a->in->size;
		st->valid |= ZIP_STAT_SIZE;
		return sizeof(*st);
	}
	case ZIP_SOURCE_ERROR:
		return zip_error_to_data(&a->err, data, len);
	case ZIP_SOURCE_SEEK: {
		zip_int64_t at = zip_source_seek_compute_offset(
		    a->pos, a->in->size, data, len, &a->err);
		if (at < 0)
			return -1;
		a->pos = (uint64_t)at;
		return 0;
	}
	case ZIP_SOURCE_TELL:
		return (zip_int64_t)a->pos;
	case ZIP_SOURCE_FREE:
		return 0;
	case ZIP_SOURCE_SUPPORTS:
		return zip_source_make_command_bitmap(
		    ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
		    ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE,
		    ZIP_SOURCE_SEEK, ZIP_SOURCE_TELL, ZIP_SOURCE_SUPPORTS, -1);
	default:
		zip_error_set(&a->err, ZIP_ER_OPNOTSUPP, 0);
		return -1;
	}
}

/* A libzip failure: the input's own error when reading failed (worth a
 * retry), else a corrupt archive. */
static int zip_failure(struct archive *a, struct sheets_error *e,
		       const char *what, zip_error_t *ze)
{
	if (a->read_errno)
		return sheets_fail(e, a->read_errno,
				   "%s: the workbook could not be read: %s",
				   what, strerror(-a->read_errno));
	return sheets_fail(e, -EBADMSG, "%s: %s", what, zip_error_strerror(ze));
}

struct archive *archive_open(const struct sheets_input *in,
			     const struct sheets_limits *lim,
			     struct sheets_error *e)
{
	struct archive *a = calloc(1, sizeof(*a));
	zip_error_t ze;
	zip_source_t *src;

	if (!a) {
		sheets_fail(e, -ENOMEM, "out of memory");
		return NULL;
	}
	a->in = in;
	a->lim = lim;
	zip_error_init(&a->err);
	zip_error_init(&ze);
	src = zip_source_function_create(source_cb, a, &ze);
	if (!src) {
		sheets_fail(e, -ENOMEM, "zip source: %s",
			    zip_error_strerror(&ze));
		goto fail;
	}
	a->zip = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
	if (!a->zip) {
		zip_source_free(src);
		zip_failure(a, e, "not a readable zip archive", &ze);
		goto fail;
	}
	zip_error_fini(&ze);
	return a;
fail:
	zip_error_fini(&ze);
	zip_error_fini(&a->err);
	free(a);
	return NULL;
}

void archive_close(struct archive *a)
{
	if (!a)
		return;
	if (a->zip)
		zip_discard(a->zip);
	zip_error_fini(&a->err);
	free(a);
}

static zip_int64_t locate(struct archive *a, const char *name)
{
	if (name[0] == '/')
		name++;
	return zip_name_locate(a->zip, name, ZIP_FL_NOCASE);
}

int archive_has(struct archive *a, const char *name)
{
	return locate(a, name) >= 0;
}

int archive_part_open(struct archive *a, const char *name,
		      struct archive_part **out, struct sheets_error *e)
{
	zip_int64_t idx = locate(a, name);
	struct archive_part *p;
	zip_stat_t st;

	*out = NULL;
	if (idx < 0)
		return -ENOENT;
	p = calloc(1, sizeof(*p));
	if (!p)
		return sheets_fail(e, -ENOMEM, "out of memory");
	p->a = a;
	sheets_printable(name, strlen(name), p->name);
	if (zip_stat_index(a->zip, (zip_uint64_t)idx, 0, &st) != 0 ||
	    !(st.valid & ZIP_STAT_COMP_SIZE)) {
		free(p);
		return zip_failure(a, e, "zip entry", zip_get_error(a->zip));
	}
	p->compressed = st.comp_size ? st.comp_size : 1;
	p->f = zip_fopen_index(a->zip, (zip_uint64_t)idx, 0);
	if (!p->f) {
		zip_error_t *ze = zip_get_error(a->zip);
		int err =
		    zip_error_code_zip(ze) == ZIP_ER_NOPASSWD
			? sheets_fail(e, -EBADMSG, "%s: an encrypted zip entry",
				      p->name)
			: zip_failure(a, e, p->name, ze);
		free(p);
		return err;
	}
	*out = p;
	return 0;
}

ssize_t archive_part_read(struct archive_part *p, void *buf, size_t n,
			  struct sheets_error *e)
{
	struct archive *a = p->a;
	zip_int64_t got = zip_fread(p->f, buf, n);

	if (got < 0)
		return zip_failure(a, e, p->name, zip_file_get_error(p->f));
	p->inflated += (uint64_t)got;
	a->total += (uint64_t)got;
	if (p->inflated > a->lim->part_max)
		return sheets_fail(
		    e, -EBADMSG, "%s inflates past %llu bytes (a zip bomb?)",
		    p->name, (unsigned long long)a->lim->part_max);
	if (a->total > a->lim->total_max)
		return sheets_fail(e, -EBADMSG,
				   "the workbook inflates past %llu bytes "
				   "(a zip bomb?)",
				   (unsigned long long)a->lim->total_max);
	if (p->inflated > RATIO_GRACE &&
	    p->inflated / p->compressed > a->lim->ratio_max)
		return sheets_fail(e, -EBADMSG,
				   "%s inflates more than %u times its "
				   "compressed size (a zip bomb?)",
				   p->name, a->lim->ratio_max);
	return (ssize_t)got;
}

void archive_part_close(struct archive_part *p)
{
	if (!p)
		return;
	if (p->f)
		zip_fclose(p->f);
	free(p);
}
