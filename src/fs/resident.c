/* SPDX-License-Identifier: MIT */
/*
 * Which chunks stay in memory, and their way to the store (reader_impl.h).
 * A READY chunk goes to the store queue, or waits for room there; memory
 * goes in a fixed order: chunks read to their end (a few kept for
 * stragglers), then, over the cap, least recently used ones. Every step is
 * O(1) per chunk: nothing walks the open files.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "cache/content.h"
#include "fs/reader_impl.h"
#include "fs/store_queue.h"

/* Bytes of chunks already read kept waiting for room in the store queue;
 * past that the store is too slow to keep up and they go unstored. */
#define UNSTORED_MAX (8u << 20)

void resident_forget_locked(struct reader *r, struct chunk *c)
{
	if (c->buf) {
		chunk_buf_unref(c->buf);
		c->buf = NULL;
	}
	mem_lru_remove(&r->mem, &c->lru);
	mem_lru_remove(&r->unstored, &c->pend);
}

/* A READY chunk goes to the store queue, or waits for room there. */
void resident_store_or_wait_locked(struct reader *r, struct rfile *f,
				   struct chunk *c)
{
	if (!r->sq || c->stored || c->storing)
		return;
	if (!mem_lru_linked(&c->pend) &&
	    store_queue_push(r->sq, f->item_id, f->version, c->idx, c->buf)) {
		c->storing = true;
		return;
	}
	if (!mem_lru_linked(&c->pend))
		mem_lru_touch(&r->unstored, &c->pend, 0);
}

/* The store queue has room again: the waiting chunks go, oldest first. */
void resident_feed_store_locked(struct reader *r)
{
	struct mem_node *n;

	while ((n = mem_lru_first(&r->unstored))) {
		struct chunk *c = container_of(n, struct chunk, pend);
		if (!store_queue_push(r->sq, c->f->item_id, c->f->version,
				      c->idx, c->buf))
			return;
		mem_lru_remove(&r->unstored, &c->pend);
		c->storing = true;
	}
}

/* Forgets a READY chunk's bytes unless the store still needs them (it
 * writes them, or waits for room to); with anyway, waiting ones go too. */
static bool trim_one_locked(struct reader *r, struct chunk *c, bool anyway)
{
	if (c->storing || (mem_lru_linked(&c->pend) && !anyway))
		return false;
	resident_forget_locked(r, c);
	c->state = c->stored ? CH_STORED : CH_UNKNOWN;
	return true;
}

/* Memory goes in this order: chunks read to their end beyond a few kept
 * for stragglers (the kernel's parallel requests arrive a little out of
 * order), then, over the cap, least recently used ones. Chunks the store
 * queue still writes stay (they cost nothing extra and are readable from
 * here until stored). Chunks waiting for room in the queue stay while
 * readers need them, and a few more once read: a store that cannot keep up
 * loses chunks (stored later, if read again), never a reader's time. */
void resident_trim_locked(struct reader *r)
{
	size_t keep = r->streams ? r->streams : 1;
	uint64_t waiting = 0;
	struct mem_node *n = mem_lru_first(&r->mem);

	while (n && n->in_done && r->mem.ndone > keep) {
		struct mem_node *next = mem_lru_next(&r->mem, n);
		struct chunk *c = container_of(n, struct chunk, lru);
		bool wait = mem_lru_linked(&c->pend) &&
			    (waiting += c->buf->cap) <= UNSTORED_MAX;
		if (!wait && trim_one_locked(r, c, true) && r->sq &&
		    c->state != CH_STORED)
			atomic_fetch_add(&r->store_lost, 1);
		n = next;
	}
	for (int pass = 0; pass < 2; pass++) {
		n = mem_lru_first(&r->mem);
		while (n && budget_used(r->budget) > r->mem_cap) {
			struct mem_node *next = mem_lru_next(&r->mem, n);
			struct chunk *c = container_of(n, struct chunk, lru);
			bool waiting_c = mem_lru_linked(&c->pend);
			if (trim_one_locked(r, c, pass == 1) && waiting_c)
				atomic_fetch_add(&r->store_lost, 1);
			n = next;
		}
	}
}
