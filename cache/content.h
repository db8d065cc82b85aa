/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CACHE_CONTENT_H
#define SPFS_CACHE_CONTENT_H

/*
 * Content store: file bytes in sqlite, as fixed-size chunks keyed by
 * (item id, content version, chunk index), beside the metadata database.
 *
 * Invariants:
 *  - a chunk is there whole, with its checks, or not at all (one
 *    transaction per batch; a kill -9 rolls the journal back at the next
 *    open);
 *  - every read is checked: each CONTENT_BLOCK of a chunk carries the
 *    quickXorHash fold of its bytes, recomputed on every read, so damage on
 *    disk is a miss (and a dropped chunk), never wrong bytes;
 *  - a store that cannot be trusted at open (the machine restarted while it
 *    was open, a truncated or foreign file, another schema or chunk size)
 *    starts empty, says so once in the log and counts it;
 *  - the cap bounds the disk use of the cache directory's files for this
 *    library (the store, its journal and the neighbours named at open):
 *    least recently used chunks are evicted before a batch is written,
 *    chunks of pinned (open) items last.
 * It stores; it never fetches.
 *
 * Threads: writes (content_put, drops, evictions) are serialised on one
 * connection; reads run in parallel on a small pool of read connections.
 * Any thread may call anything.
 */

#include <stddef.h>
#include <stdint.h>

struct content;

/* A chunk's (or block's) share of the file's quickXorHash: its bytes folded
 * at their file offsets (base/qxh.h); the XOR of all parts' folds is the
 * file's. */
#define CONTENT_FOLD_LEN 160
/* The unit of read checks: each block of a chunk has its own fold. */
#define CONTENT_BLOCK (64u << 10)

struct content_config {
	const char *path;    /* the database (created 0600) */
	uint64_t max_bytes;  /* the cap, 0 = none */
	uint64_t chunk_size; /* bytes per chunk (all but a file's last) */
	/* Files that share the cap with this store (the metadata database and
	 * its WAL): their sizes count against it. NULL-terminated, or NULL. */
	const char *const *neighbours;
	unsigned readers; /* read connections at most; 0 = 4 */
};

/* Opens or creates the store. NULL + *err (-errno) when it cannot be
 * created at all; a damaged one is started empty instead. */
struct content *content_open(const struct content_config *cfg, int *err);
/* Writes pending LRU marks and closes; a clean close lets the next open
 * trust the file. */
void content_close(struct content *c);

/* Bytes of folds a chunk of len bytes carries: one fold per block. */
size_t content_folds_len(size_t len);

/* A chunk to store, with the folds of its blocks (content_folds_len(len)
 * bytes: block b's bytes folded at their file offset). */
struct content_chunk {
	const char *item_id;
	const char *version;
	uint64_t index;
	const void *data;
	size_t len;
	const unsigned char *folds;
	int stored; /* out: 1 when content_put stored it */
};

/* Stores chunks in one transaction (replacing any with the same key),
 * evicting first what the cap needs. Returns how many were stored (a chunk
 * larger than the whole cap is skipped), or -ENOSPC (the volume is full:
 * nothing stored), -errno. */
int content_put(struct content *c, struct content_chunk *chunks, size_t n);

/* Stores one chunk whose folds are not at hand (content made here, not
 * downloaded): computes them, then content_put. 0, -EFBIG (larger than the
 * cap allows: not stored), -ENOSPC, -errno. */
int content_put_bytes(struct content *c, const char *item_id,
		      const char *version, uint64_t index, const void *data,
		      size_t len);

/* The stored length of a chunk, 0 when it is not stored. */
uint64_t content_chunk_len(struct content *c, const char *item_id,
			   const char *version, uint64_t index);

/* Copies n bytes at offset of a stored chunk into buf, checking every block
 * they touch. 0; -ENOENT (not stored, or shorter than offset + n);
 * -EUCLEAN (a block failed its check: the chunk is dropped and counted);
 * -errno. Marks the chunk used. */
int content_read(struct content *c, const char *item_id, const char *version,
		 uint64_t index, size_t offset, void *buf, size_t n);

/* Calls fn for every stored chunk of a version with its length and fold
 * (the XOR of its blocks' folds); fn returning non-zero stops the scan and
 * is returned. 0 or -errno. */
typedef int (*content_scan_fn)(void *ctx, uint64_t index, uint64_t len,
			       const unsigned char fold[CONTENT_FOLD_LEN]);
int content_scan(struct content *c, const char *item_id, const char *version,
		 content_scan_fn fn, void *ctx);

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

/* Drops every chunk of item_id whose version differs from keep_version
 * (NULL: all of them), and their file rows. */
int content_drop_item(struct content *c, const char *item_id,
		      const char *keep_version);
/* Drops the chunks of exactly this version, and its file row unless
 * keep_row. */
int content_drop_version(struct content *c, const char *item_id,
			 const char *version, int keep_row);

/* Pinned items (a reader has them open) are evicted only when the cap
 * cannot be met otherwise. Counted. */
void content_pin(struct content *c, const char *item_id);
void content_unpin(struct content *c, const char *item_id);

/* Evicts until the cap holds; writes pending LRU marks and drops chunks
 * that failed their checks. The number of chunks evicted, or -errno. */
long content_evict(struct content *c);

struct content_stats {
	uint64_t bytes; /* chunk bytes stored */
	uint64_t chunks;
	uint64_t evicted;
	uint64_t resets;	 /* times the store started empty */
	uint64_t damaged_chunks; /* chunks that failed a read check */
	uint64_t disk_bytes;	 /* the store's files and neighbours on disk */
};
void content_get_stats(struct content *c, struct content_stats *out);

#endif
