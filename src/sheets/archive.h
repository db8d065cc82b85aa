/* SPDX-License-Identifier: MIT */
#ifndef SPFS_SHEETS_ARCHIVE_H
#define SPFS_SHEETS_ARCHIVE_H

/*
 * The zip container of an Office Open XML workbook, read with libzip from
 * the workbook's read callback (random access: libzip seeks to the central
 * directory, then to each part). Parts are inflated as they are read, and
 * bounded: a part that inflates past part_max bytes, or past ratio_max
 * times its compressed size once beyond 1 MiB, or a workbook past
 * total_max, fails with -EBADMSG ("a zip bomb").
 */

#include <stddef.h>
#include <sys/types.h>

#include "sheets/error.h"
#include "sheets/sheets.h"

struct archive;
struct archive_part;

/* NULL with e set (-EBADMSG: not a zip, or a corrupt one). limits must
 * have its defaults filled in; both pointers are borrowed for the life of
 * the archive. */
struct archive *archive_open(const struct sheets_input *in,
			     const struct sheets_limits *limits,
			     struct sheets_error *e);
void archive_close(struct archive *a);

/* Whether a part exists. Part names are OPC names: case-insensitive, with
 * or without the leading '/'. */
int archive_has(struct archive *a, const char *name);

/* Opens a part for reading: 0, -ENOENT (absent: e untouched), or -EBADMSG
 * with e set. */
int archive_part_open(struct archive *a, const char *name,
		      struct archive_part **out, struct sheets_error *e);
/* Up to n inflated bytes; 0 at the end; negative errno with e set. */
ssize_t archive_part_read(struct archive_part *p, void *buf, size_t n,
			  struct sheets_error *e);
void archive_part_close(struct archive_part *p);

#endif
