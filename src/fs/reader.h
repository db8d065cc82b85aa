/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_READER_H
#define SPFS_FS_READER_H

/*
 * File content: ranged downloads, read-ahead, the content store, and
 * verification. A file version (item id + content version) is fetched in
 * chunks of chunk_size bytes with ranged GETs of its pre-authenticated
 * download URL; each chunk is fetched at most once at a time however many
 * readers want it (single flight) and reaches its readers from memory the
 * moment it is downloaded; the store queue writes it to the content store
 * beside the downloads, and later reads come from there, checked.
 *
 * One version per open: a handle reads the version it opened; if the server
 * starts serving other bytes (size, ETag or item version changed), reads
 * fail with EIO instead of mixing versions.
 *
 * Honest sizes: the first response of a version tells its real length
 * (Content-Range total or Content-Length); it wins over the listing.
 *
 * Threads: reads come from any FUSE thread; read-ahead runs on `workers`
 * threads started by reader_start() (after the daemon forked); a janitor
 * thread evicts past the cache cap. Never logs URLs or content.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct graph;
struct content;
struct reader;
struct reader_handle;

struct reader_config {
	uint64_t chunk_size; /* bytes per chunk, 0 = 4 MiB */
	uint64_t readahead;  /* max read-ahead window in bytes; 0 = none */
	uint64_t small_file; /* files up to this are fetched whole */
	unsigned workers;    /* parallel read-ahead downloads at most, 0 = 16 */
	uint64_t memory;     /* chunk bytes in memory at most; 0 = by chunk
				size (96 MiB at 4 MiB chunks) */
	double read_timeout; /* seconds one chunk may take with its retries;
				0 = 60 */
};

/* Borrows g and store (NULL: cache=off, nothing is stored). */
struct reader *reader_new(struct graph *g, struct content *store,
			  const char *drive_id, const struct reader_config *cfg,
			  int *err);
void reader_free(struct reader *r);
/* Starts the read-ahead workers and the janitor. 0 or -errno. */
int reader_start(struct reader *r);

/* A download URL seen in a listing or delta page: used for the next fetch
 * of that item instead of asking Graph for one. */
void reader_note_url(struct reader *r, const char *item_id, const char *url);

struct reader_file {
	const char *item_id;
	const char *version;	  /* content version: cTag, else eTag */
	const char *quickxorhash; /* expected, base64; NULL = unknown */
	uint64_t size;		  /* listed size */
	const char *name;	  /* for log lines; may be NULL */
	int lenient_hash; /* an Office file: SharePoint rewrites these, so a
			     repeated hash mismatch is served (see verify.c) */
};

/* Fetches small files (up to small_file) into the store ahead of their
 * opens, within the memory budget, without blocking: a folder being read
 * in order gets its next files while the current one is copied. Needs the
 * cache. Returns how many were queued. */
int reader_prefetch(struct reader *r, const struct reader_file *files,
		    size_t n);

struct reader_open_result {
	uint64_t size;	  /* the real size: served, or listed when cached */
	int size_changed; /* differs from the listed size */
	int keep_cache;	  /* the kernel's pages of this file are this
			     version's */
};

/* Opens a version for reading. When its size is not known yet, fetches the
 * first chunk (which tells the size). 0 or -errno. */
int reader_open(struct reader *r, const struct reader_file *f,
		struct reader_handle **out, struct reader_open_result *res);
/* Copies up to size bytes from off; returns the count (0 at EOF) or -errno
 * (-EIO: the download failed or the version changed). */
ssize_t reader_read(struct reader_handle *h, char *buf, size_t size,
		    uint64_t off);
void reader_release(struct reader_handle *h);

/* The item changed or vanished: its stored versions other than keep (NULL:
 * all) are dropped once no reader has them open. */
void reader_forget(struct reader *r, const char *item_id, const char *keep);

struct reader_stats {
	uint64_t downloads;	 /* HTTP requests to download URLs */
	uint64_t download_bytes; /* content bytes received */
	uint64_t download_retries;
	uint64_t url_refreshes; /* download URLs asked of Graph */
	uint64_t cache_hits;	/* chunk reads served by the store */
	uint64_t cache_misses;	/* chunks fetched over the network */
	uint64_t chunks_stored;
	uint64_t readahead_chunks; /* chunks queued ahead of readers */
	uint64_t prefetched_files; /* small files fetched before their open */
	uint64_t hash_verified;
	uint64_t hash_mismatches;
	uint64_t size_corrections;
	uint64_t store_errors;	/* chunks the store could not take */
	uint64_t store_skipped; /* not stored: the store queue was full */
	uint64_t store_queued_bytes;
	uint64_t read_timeouts; /* fetches that ran out of read_timeout */
	uint64_t open_files;
	uint64_t memory_bytes; /* chunk bytes held in memory */
	uint64_t streams;      /* handles reading sequentially */
};
void reader_get_stats(struct reader *r, struct reader_stats *out);

#endif
