/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_BUDGET_H
#define SPFS_FS_BUDGET_H

/*
 * The read path's memory: chunk buffers and what they may add up to.
 *
 *  - struct chunk_buf holds one chunk's bytes and the folds of its blocks.
 *    It is reference counted, because a chunk just downloaded is served to
 *    readers from memory while the store queue writes it: whoever drops the
 *    last reference returns it. Buffers of the chunk size are reused from a
 *    small pool (a fresh MiB-sized malloc is an mmap whose every page
 *    faults and is zeroed on first touch).
 *  - every live buffer's capacity is counted in one total, whoever holds
 *    it: the budget is honest about the store queue too.
 *  - struct mem_lru orders the chunks held in memory for trimming: chunks a
 *    reader has read to their end go first, then least recently used.
 *    Every operation is O(1): nothing walks the open files.
 *
 * Threads: buffers may be referenced and released from any thread; the
 * total is atomic. A mem_lru belongs to its owner's lock.
 */

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The struct that embeds member at p. */
#define container_of(p, type, member)                                          \
	((type *)(void *)((char *)(p)-offsetof(type, member)))

struct budget;

struct chunk_buf {
	atomic_uint refs;
	size_t cap; /* bytes of data */
	size_t len; /* bytes filled */
	char *data;
	unsigned char *folds; /* content_folds_len(cap) bytes */
	struct budget *owner;
};

/* chunk: the size of pooled buffers; keep: how many idle ones to keep. */
struct budget *budget_new(size_t chunk, unsigned keep);
void budget_free(struct budget *b);

/* A buffer for cap bytes with one reference, counted; NULL when out of
 * memory. */
struct chunk_buf *budget_buf_get(struct budget *b, size_t cap);
struct chunk_buf *chunk_buf_ref(struct chunk_buf *cb);
/* Drops a reference; the last one returns the buffer (NULL is a no-op). */
void chunk_buf_unref(struct chunk_buf *cb);

/* Bytes of every live buffer. */
uint64_t budget_used(const struct budget *b);

/* An intrusive list node; embed it in whatever is trimmed. */
struct mem_node {
	struct mem_node *prev, *next;
	int in_done; /* in the done queue */
};

/* Two queues, each oldest first: chunks read to their end, then the rest
 * by last use. */
struct mem_lru {
	struct mem_node done, used;
	size_t n, ndone;
};

void mem_lru_init(struct mem_lru *l);
/* Inserts or moves n: as most recently used, or (done) as first to go. */
void mem_lru_touch(struct mem_lru *l, struct mem_node *n, int done);
void mem_lru_remove(struct mem_lru *l, struct mem_node *n);
/* The node to trim first, or NULL when empty; then the one after n. */
struct mem_node *mem_lru_first(struct mem_lru *l);
struct mem_node *mem_lru_next(struct mem_lru *l, struct mem_node *n);
/* Whether n is in a list. */
int mem_lru_linked(const struct mem_node *n);

#endif
