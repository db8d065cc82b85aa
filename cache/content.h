/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CACHE_CONTENT_H
#define SPFS_CACHE_CONTENT_H

/*
 * Content store: file bytes in sqlite, as fixed-size chunks keyed by
 * (item id, content version, chunk index), beside the metadata database.
 * Chunks are written in one transaction each and read with incremental blob
 * I/O, so a crash loses chunks but never leaves one that reads back wrong
 * (a chunk is there whole, or not at all). A byte cap is kept by evicting
 * the least recently used chunks, never those of pinned (open) items.
 * It stores; it never fetches.
 *
 * Thread safety: any thread; one connection serialised by a mutex.
 */

#include <stddef.h>
#include <stdint.h>

struct content;

/* Opens or creates path (0600). max_bytes caps the stored chunk bytes. */
struct content *content_open(const char *path, uint64_t max_bytes, int *err);
void content_close(struct content *c);

/* Stores a chunk (replacing one with the same key). 0, -ENOSPC (disk full:
 * nothing stored), -errno. */
int content_put(struct content *c, const char *item_id, const char *version,
		uint64_t index, const void *data, size_t len);

/* Copies up to cap bytes of the chunk from offset into buf; *len receives
 * the number copied. 0, -ENOENT (not cached), -errno. Marks it used. */
int content_read(struct content *c, const char *item_id, const char *version,
		 uint64_t index, size_t offset, void *buf, size_t cap,
		 size_t *len);

/* Drops every chunk of item_id whose version differs from keep_version
 * (NULL: all of them). */
int content_drop_item(struct content *c, const char *item_id,
		      const char *keep_version);

/* Pinned items are never evicted (a reader has them open). Counted. */
void content_pin(struct content *c, const char *item_id);
void content_unpin(struct content *c, const char *item_id);

/* Evicts least recently used, unpinned chunks until the stored bytes are at
 * most the cap. Returns the number of chunks evicted, or -errno. */
long content_evict(struct content *c);

struct content_stats {
	uint64_t bytes; /* chunk bytes stored */
	uint64_t chunks;
	uint64_t evicted;
};
void content_get_stats(struct content *c, struct content_stats *out);

#endif
