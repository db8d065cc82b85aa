/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_READER_IMPL_H
#define SPFS_FS_READER_IMPL_H

/*
 * The inside of the reader, shared by the files of the read path:
 *   reader.c       the read path, deliveries, opens (the API of reader.h)
 *   rfile.c        file versions: their table, sizes, stored chunks, drops
 *   readahead.c    read-ahead scheduling, its workers, prefetch
 *   resident.c     which chunks stay in memory, their way to the store
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

/* One open of a version. */
struct reader_handle {
	struct reader *r;
	struct rfile *f;
	uint64_t next_off; /* where a sequential reader reads next */
	uint64_t window;   /* read-ahead chunks; 0 = random access */
	uint64_t ahead;	   /* chunks below this were considered already */
	bool streaming;	   /* counted in r->streams */
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
/* A stored chunk loaded into memory ahead of its reader (fetch.c). */
void reader_loaded(struct reader *r, struct rfile *f, uint64_t idx,
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

/* rfile.c */
uint64_t rfile_nchunks(const struct reader *r, uint64_t size);
/* The live (not dead) version, or NULL. */
struct rfile *rfile_find_locked(struct reader *r, const char *item_id,
				const char *version);
/* A new version in the table (idle until counted), NULL + *err. */
struct rfile *rfile_new_locked(struct reader *r, const struct reader_file *in,
			       int *err);
void rfile_free_locked(struct reader *r, struct rfile *f);
/* f is used again (an open or a job). */
void rfile_busy_locked(struct reader *r, struct rfile *f);
/* f may have become unused: idle list (oldest freed past a bound), or
 * freed at once when dead. */
void rfile_maybe_idle_locked(struct reader *r, struct rfile *f);
/* Frees the unused versions of item_id other than keep (NULL: all);
 * true when one was in use and stays. */
bool rfile_forget_locked(struct reader *r, const char *item_id,
			 const char *keep);

/* readahead.c */
/* After a read of size bytes at off: grows or resets the handle's window
 * and queues the chunks ahead. */
void readahead_locked(struct reader_handle *h, uint64_t off, size_t size);
/* Counts the handle in (or out of) the sequential streams. */
void readahead_stream_locked(struct reader_handle *h, bool on);

/* resident.c */
/* Drops a chunk's bytes from memory (and its place in the lists). */
void resident_forget_locked(struct reader *r, struct chunk *c);
/* A READY chunk to the store queue, or waiting for room there. */
void resident_store_or_wait_locked(struct reader *r, struct rfile *f,
				   struct chunk *c);
/* The store queue has room again: waiting chunks go, oldest first. */
void resident_feed_store_locked(struct reader *r);
/* Trims memory (see resident.c). */
void resident_trim_locked(struct reader *r);

/* fetch.c */
/* Downloads chunk idx, whose state the caller set to CH_FETCHING (r->lock
 * not held). On return the chunk is delivered or failed and waiters are
 * woken. 0 or -errno (-ESTALE: the version changed; -ENOENT: gone;
 * -ETIMEDOUT: not by deadline, a reader_now() time). */
int fetch_chunk(struct reader *r, struct rfile *f, uint64_t idx,
		double deadline);
/* Loads stored chunk idx (CH_FETCHING, set by the caller) into memory for
 * a reader about to want it: on worker threads, so reading the store runs
 * beside the reader. 0, or -errno with the chunk left CH_FETCHING and no
 * longer counted as stored (the caller downloads it then). */
int fetch_from_store(struct reader *r, struct rfile *f, uint64_t idx);

/* verify.c */
/* Once every chunk's fold is known, compares the file's hash with
 * SharePoint's and applies the rules (verify.c). */
void verify_locked(struct reader *r, struct rfile *f);

#endif
