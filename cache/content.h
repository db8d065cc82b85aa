/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CACHE_CONTENT_H
#define SPFS_CACHE_CONTENT_H

/*
 * Content store: file bytes in sqlite, as fixed-size chunks keyed by
 * (item id, content version, chunk index), beside the metadata database.
 * Chunks are written in one transaction each and read with incremental blob
 * I/O, so a crash loses chunks but never leaves one that reads back wrong
 * (a chunk is there whole, or not at all). A byte cap is kept by evicting
 * the least recently used chunks, those of pinned (open) items last.
 * It stores; it never fetches.
 *
 * Thread safety: any thread; one connection serialised by a mutex.
 */

#include <stddef.h>
#include <stdint.h>

struct content;

/* A chunk's share of the file's quickXorHash: its bytes folded at their
 * file offsets (base/qxh.h); XOR of every chunk's fold is the file's. */
#define CONTENT_FOLD_LEN 160

/* Opens or creates path (0600). max_bytes caps the stored chunk bytes. */
struct content *content_open(const char *path, uint64_t max_bytes, int *err);
void content_close(struct content *c);

/* Stores a chunk (replacing one with the same key) with its hash fold
 * (NULL: none). 0, -ENOSPC (disk full: nothing stored), -errno. */
int content_put(struct content *c, const char *item_id, const char *version,
		uint64_t index, const void *data, size_t len,
		const unsigned char *fold);

/* 1 when the chunk is stored. */
int content_has(struct content *c, const char *item_id, const char *version,
		uint64_t index);

/* When chunks 0..nchunks-1 are all stored with folds: their XOR in fold and
 * 0; else -ENOENT. */
int content_fold(struct content *c, const char *item_id, const char *version,
		 uint64_t nchunks, unsigned char fold[CONTENT_FOLD_LEN]);

/* What is known of one stored version: the size the server served, whether
 * the whole was verified against the hash, and how often it mismatched. */
struct content_file {
	uint64_t size;
	int verified;
	int mismatches;
};
/* 0, -ENOENT (never stored), -errno. */
int content_file_get(struct content *c, const char *item_id,
		     const char *version, struct content_file *out);
int content_file_set(struct content *c, const char *item_id,
		     const char *version, const struct content_file *in);

/* Copies up to cap bytes of the chunk from offset into buf; *len receives
 * the number copied. 0, -ENOENT (not cached), -errno. Marks it used. */
int content_read(struct content *c, const char *item_id, const char *version,
		 uint64_t index, size_t offset, void *buf, size_t cap,
		 size_t *len);

/* Drops every chunk of item_id whose version differs from keep_version
 * (NULL: all of them). */
int content_drop_item(struct content *c, const char *item_id,
		      const char *keep_version);

/* Drops the chunks of exactly this version (its file row stays). */
int content_drop_version(struct content *c, const char *item_id,
			 const char *version);

/* Pinned items (a reader has them open) are evicted only when the cap
 * cannot be met otherwise. Counted. */
void content_pin(struct content *c, const char *item_id);
void content_unpin(struct content *c, const char *item_id);

/* Evicts least recently used chunks, unpinned ones first, until the stored
 * bytes are at most the cap. Returns the number of chunks evicted, or -errno. */
long content_evict(struct content *c);

struct content_stats {
	uint64_t bytes; /* chunk bytes stored */
	uint64_t chunks;
	uint64_t evicted;
};
void content_get_stats(struct content *c, struct content_stats *out);

#endif
