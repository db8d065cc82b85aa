/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_READER_IMPL_H
#define SPFS_FS_READER_IMPL_H

/*
 * The inside of the reader, shared by the files of the read path:
 *   reader.c       file versions, the read path, read-ahead scheduling,
 *                  workers, the memory trim (the public API of reader.h)
 *   fetch.c        downloading one chunk: ranges, resumes, URL refreshes,
 *                  the deadline
 *   verify.c       the whole-file quickXorHash check and its rules
 *   store_queue.c  every write to the content store, on its own thread
 *   budget.c       chunk buffers, their total, the trim order
 *   chunk_map.c    a version's sparse chunk table
 *   url_cache.c    download URLs from listings
 *
 * Lock: r->lock guards every rfile, chunk, handle window, the job queue
 * and the memory LRU. It is released around network I/O and store reads.
 * Order: r->lock, then the store queue's lock, the URL cache's lock and the
 * store's locks (all leaves to it). Never calls into fs.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/budget.h"
#include "fs/chunk_map.h"
#include "fs/reader.h"

struct graph;
struct content;
struct store_queue;
struct url_cache;

#define RFILE_BUCKETS 256

/* One file version (item id + content version), shared by its opens. */
struct rfile {
	struct rfile *next; /* in its hash bucket */
	char *item_id, *version, *qxh, *name;
	bool lenient; /* an Office file: SharePoint may rewrite its bytes */
	uint64_t size;
	bool size_confirmed; /* a response (or the store) told the size */
	bool size_changed;   /* it differs from the listed size */
	uint64_t nchunks;
	struct chunk_map chunks;
	uint64_t nfolds; /* chunks (below nchunks) whose fold is known */
	unsigned opens, jobs;
	int dead;   /* -ESTALE (the server moved on) or -EIO (bad hash) */
	int verify; /* 0 pending, 1 verified, 2 accepted mismatch (Office) */
	int mismatches;
	char *url; /* download URL in use, and when it was had */
	double url_at;
	bool url_suspect;     /* 401/403 seen: ask Graph (checks the version) */
	char *etag;	      /* of the first response that had one */
	struct mem_node idle; /* in r->idle while nobody uses it */
};

struct job {
	struct rfile *f;
	uint64_t idx;
	bool prefetch;	/* wanted before any open: not dropped when unopened */
	uint64_t bytes; /* counted in r->jobs_bytes until done */
	struct job *next;
};

struct reader {
	struct graph *g;
	struct content *store; /* NULL: cache=off */
	char *drive_id;
	uint64_t chunk, small, ra_chunks;
	uint64_t mem_cap; /* chunk bytes in memory and promised, at most */
	unsigned max_workers;
	double read_timeout;

	pthread_mutex_t lock;
	pthread_cond_t cond;	 /* chunk states changed */
	pthread_cond_t job_cond; /* jobs queued, or stop */
	struct rfile *files[RFILE_BUCKETS];
	struct mem_lru idle; /* unused rfiles, oldest first */
	struct job *jq_head, *jq_tail;
	uint64_t jobs_bytes;	 /* expected bytes of queued and running jobs */
	struct mem_lru mem;	 /* READY chunks, trim order */
	struct mem_lru unstored; /* READY chunks the store queue had no room
				    for yet, oldest first */
	unsigned streams;	 /* handles reading sequentially now */
	bool stop;
	pthread_t *workers;
	unsigned nstarted, nwaiting;

	struct budget *budget;
	struct url_cache *urls;
	struct store_queue *sq; /* NULL without a store */

	atomic_uint_fast64_t downloads, download_bytes, download_retries,
	    url_refreshes, cache_hits, cache_misses, readahead_chunks,
	    hash_verified, hash_mismatches, size_corrections, prefetched_files,
	    timeouts, store_lost;
};

/* reader.c */
double reader_now(void);
/* The real length of chunk idx at the version's current size. */
uint64_t reader_chunk_len(const struct reader *r, const struct rfile *f,
			  uint64_t idx);
/* The server says the version has total bytes: confirm or correct the
 * size (first response), or declare the version dead (-ESTALE). */
int reader_size_seen_locked(struct reader *r, struct rfile *f, uint64_t total);
/* Hands a downloaded chunk (len bytes, block folds filled) to its readers,
 * then to the store queue. Takes over the caller's reference. */
void reader_deliver(struct reader *r, struct rfile *f, uint64_t idx,
		    struct chunk_buf *buf);
/* A fetch failed: readers get err for a moment, then may try again. */
void reader_fetch_failed(struct reader *r, struct rfile *f, uint64_t idx,
			 int err);
/* Queues the version's file row (size, verification) for the store. */
void reader_store_file_row_locked(struct reader *r, struct rfile *f);
/* Forgets every chunk of f in memory and the store's copy of the version
 * (a bad hash: everything is downloaded again), with its file row unless
 * keep_row. */
void reader_drop_version_locked(struct reader *r, struct rfile *f,
				bool keep_row);

/* fetch.c */
/* Downloads chunk idx, whose state the caller set to CH_FETCHING (r->lock
 * not held). On return the chunk is delivered or failed and waiters are
 * woken. 0 or -errno (-ESTALE: the version changed; -ENOENT: gone;
 * -ETIMEDOUT: not by deadline, a reader_now() time). */
int fetch_chunk(struct reader *r, struct rfile *f, uint64_t idx,
		double deadline);

/* verify.c */
/* Once every chunk's fold is known, compares the file's hash with
 * SharePoint's and applies the rules (verify.c). */
void verify_locked(struct reader *r, struct rfile *f);

#endif
