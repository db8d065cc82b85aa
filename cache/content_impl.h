/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CACHE_CONTENT_IMPL_H
#define SPFS_CACHE_CONTENT_IMPL_H

/*
 * The inside of the content store, shared by content.c (opening, trust,
 * connections, resets, pins, stats) and content_rw.c (writes, checked
 * reads, eviction). Internal to cache/.
 *
 * Locks, in this order: io (a rwlock: reads shared, every write exclusive,
 * so sqlite's own locks never make anyone wait), then wlock (the writer
 * connection and the counters), then the leaves pool_lock, mark_lock and
 * pin_lock. None is held across network I/O: the store never does any.
 */

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache/content.h"

/* A read connection with its prepared lookup and a block-sized scratch
 * buffer for pieces that do not cover whole blocks. */
struct rconn {
	sqlite3 *db;
	sqlite3_stmt *find;
	unsigned char *scratch;
	struct rconn *next;
};

struct pin {
	char *item_id;
	unsigned count;
	struct pin *next;
};

#define MARKS_MAX	  4096
#define CONTENT_PAGE_SIZE 65536

struct content {
	char *path, *journal, *marker;
	char **neighbours;
	uint64_t max_bytes, chunk_size;
	unsigned max_readers;
	uint64_t reserve; /* free volume bytes left to the metadata store */

	pthread_rwlock_t io;
	pthread_mutex_t wlock;
	sqlite3 *db; /* the writer */
	struct {
		sqlite3_stmt *old_len, *put_row, *put_data, *touch, *del, *lru;
	} st;
	uint64_t bytes, chunks, evicted, resets, clock;
	bool trusted; /* opened without doubt: a clean close may say so */

	pthread_mutex_t pool_lock;
	struct rconn *pool;
	unsigned nreaders; /* open read connections, pooled or in use */

	/* Work readers leave for the writer: LRU marks (row ids) and chunks
	 * that failed their check. Bounded; a mark that does not fit is only
	 * a less precise LRU. */
	pthread_mutex_t mark_lock;
	int64_t marks[MARKS_MAX];
	size_t nmarks;
	int64_t doomed[64];
	size_t ndoomed;

	pthread_mutex_t pin_lock;
	struct pin *pins;

	atomic_bool damaged; /* sqlite reported corruption: reset at the next
				write */
	atomic_uint_fast64_t damaged_chunks;
	atomic_int damage_logged;
};

/* content.c */
/* A read connection from the pool (io held shared by the caller), or NULL
 * with *err. */
struct rconn *content_conn_get(struct content *c, int *err);
void content_conn_put(struct content *c, struct rconn *rc);
/* Notes an sqlite error: corruption marks the store for a reset. */
int content_sqlite_err(struct content *c, int rc);
/* With io held exclusively and wlock: empties the store in place (files
 * removed and created again), counted, with reason in the log. */
int content_reset_locked(struct content *c, const char *reason);
bool content_pinned(struct content *c, const char *item_id);

/* content_rw.c */
/* With io exclusive and wlock: applies LRU marks, drops doomed chunks. */
void content_apply_marks_locked(struct content *c);

#endif
