/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_CHUNK_MAP_H
#define SPFS_FS_CHUNK_MAP_H

/*
 * A file version's chunk states, by chunk index. Sparse: only chunks that
 * were touched (read, fetched, found in the store) have an entry, so the
 * memory follows what was read, never a size the server claims. Entries
 * stay where they are (the memory LRU points at them) until dropped.
 * The owner's lock guards it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/budget.h"

enum chunk_state {
	CH_UNKNOWN,  /* not in memory; maybe in the store */
	CH_STORED,   /* in the store (unless evicted since) */
	CH_QUEUED,   /* waiting for a read-ahead worker */
	CH_FETCHING, /* one thread is downloading it */
	CH_READY,    /* in memory */
	CH_FAILED,   /* the last fetch failed with err, at failed_at */
};

struct rfile;

struct chunk {
	uint64_t idx;
	struct rfile *f;
	unsigned char state;
	bool storing;	       /* the store queue holds its bytes */
	bool stored;	       /* READY: the store has it too */
	bool has_fold;	       /* fold is known */
	int err;	       /* CH_FAILED */
	double failed_at;      /* CH_FAILED */
	struct chunk_buf *buf; /* CH_READY */
	struct mem_node lru;   /* CH_READY: in the reader's memory LRU */
	struct mem_node
	    pend; /* READY, unstored: waiting for room in the store queue */
	unsigned char fold[160]; /* the chunk's share of the file hash */
};

struct chunk_map {
	struct chunk **slots;
	size_t cap, n;
};

void chunk_map_init(struct chunk_map *m);
/* Calls drop (if any) for every entry, then frees them. */
void chunk_map_release(struct chunk_map *m, void (*drop)(struct chunk *));
/* The entry of idx, or NULL. */
struct chunk *chunk_map_get(const struct chunk_map *m, uint64_t idx);
/* The entry of idx, created zeroed (CH_UNKNOWN) when absent; NULL when out
 * of memory. */
struct chunk *chunk_map_add(struct chunk_map *m, uint64_t idx);
/* Removes the entries at n and beyond (a file found shorter), calling drop
 * for each first. */
void chunk_map_truncate(struct chunk_map *m, uint64_t n,
			void (*drop)(struct chunk *));
/* Calls fn for every entry, in no particular order. */
void chunk_map_each(const struct chunk_map *m,
		    void (*fn)(struct chunk *, void *), void *ctx);

#endif
