/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_STORE_QUEUE_H
#define SPFS_FS_STORE_QUEUE_H

/*
 * Every write to the content store, off the read path: one thread drains
 * an ordered queue of chunks to store and of drops and file rows, batching
 * consecutive chunks into one transaction. Order is the point: a drop
 * queued after a chunk removes that chunk too, so a version dropped for a
 * bad hash never comes back from a write still in flight.
 *
 * Readers never wait for it: a chunk pushed while the queue holds its
 * byte limit is refused (the caller serves it from memory, unstored), and
 * a full disk fails the chunks, not the reads. A crash loses what is still
 * queued, nothing else.
 *
 * Threads: push and the drops from any thread (the caller's locks may be
 * held: the queue's lock is a leaf); `stored` is called on the queue's
 * thread with no lock of the queue held.
 */

#include <stdbool.h>
#include <stdint.h>

struct content;
struct content_file;
struct chunk_buf;
struct store_queue;

/* Tells the owner what became of a pushed chunk: stored (1) or not (0). */
typedef void (*store_queue_done_fn)(void *ctx, const char *item_id,
				    const char *version, uint64_t index,
				    struct chunk_buf *buf, int stored);

struct store_queue_config {
	uint64_t max_bytes;	  /* chunk bytes queued at most */
	uint64_t batch_bytes;	  /* chunk bytes per transaction at most */
	store_queue_done_fn done; /* may be NULL */
	void *ctx;
};

struct store_queue *store_queue_new(struct content *store,
				    const struct store_queue_config *cfg);
/* Starts the thread (after the daemon forked). 0 or -errno. */
int store_queue_start(struct store_queue *q);
/* Stores what is queued, then stops the thread and frees the queue. */
void store_queue_free(struct store_queue *q);

/* Queues a chunk (takes a reference to buf, whose len bytes and folds are
 * final). false when the queue is full or out of memory: not stored. */
bool store_queue_push(struct store_queue *q, const char *item_id,
		      const char *version, uint64_t index,
		      struct chunk_buf *buf);
/* Queues content_drop_item / content_drop_version / content_file_set.
 * Chunks of what is dropped that are still queued are discarded now. */
void store_queue_drop_item(struct store_queue *q, const char *item_id,
			   const char *keep_version);
void store_queue_drop_version(struct store_queue *q, const char *item_id,
			      const char *version, bool keep_row);
void store_queue_file_row(struct store_queue *q, const char *item_id,
			  const char *version, const struct content_file *row);
/* Waits until everything queued so far is written (tests, shutdown). */
void store_queue_flush(struct store_queue *q);

struct store_queue_stats {
	uint64_t stored;       /* chunks written */
	uint64_t skipped_full; /* refused: the queue held its limit */
	uint64_t failed;       /* the store could not take them */
	uint64_t queued_bytes; /* now */
	uint64_t transactions;
};
void store_queue_get_stats(struct store_queue *q,
			   struct store_queue_stats *out);

#endif
