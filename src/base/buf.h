/* SPDX-License-Identifier: MIT */
#ifndef SPFS_BASE_BUF_H
#define SPFS_BASE_BUF_H

/*
 * Bounded byte buffer. Anything sized by the network goes through one of
 * these, so a hostile or broken peer makes an operation fail with -EFBIG
 * instead of growing memory without limit.
 *
 * Invariants: data is NUL-terminated whenever it is non-NULL (so text can be
 * used as a C string); len never exceeds max; a zeroed struct is not valid,
 * use buf_init(). Value type: the caller owns the struct, buf_release() frees
 * the storage.
 */

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* NULL until the first append */
	size_t len; /* bytes used, excluding the terminating NUL */
	size_t cap; /* bytes allocated */
	size_t max; /* hard limit on len */
	int secret; /* wipe on release and on reallocation */
};

void buf_init(struct buf *b, size_t max);
/* Like buf_init, but the contents are wiped before memory is given back. */
void buf_init_secret(struct buf *b, size_t max);
void buf_release(struct buf *b);
/* Empties the buffer, keeping its storage. */
void buf_reset(struct buf *b);

/* Returns 0, -EFBIG when max would be exceeded (buffer unchanged), -ENOMEM. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Hands the storage to the caller (free() it; never NULL: "" when empty)
 * and leaves the buffer empty. Returns NULL only on -ENOMEM. */
char *buf_detach(struct buf *b, size_t *len);

/* The contents as a C string; "" when empty. Borrowed. */
const char *buf_str(const struct buf *b);

#endif
