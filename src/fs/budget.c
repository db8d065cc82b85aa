/* SPDX-License-Identifier: MIT */
/*
 * Chunk buffers, their pool and their total; the trimming order of chunks
 * in memory (see budget.h).
 */
#include "config.h"

#include "fs/budget.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "cache/content.h"

#define POOL_MAX    32
#define POOL_IDLE_S 2 /* pooled buffers unused this long are returned */
/* Buffers this large are mapped and unmapped directly: glibc would move
 * its mmap threshold up after the first free and then keep freed chunk
 * buffers in its arenas, so RSS would stay at its peak. */
#define MAP_MIN (256u << 10)
/* Chunk buffers of 2 MiB and more use transparent huge pages where the
 * kernel offers them: a fresh 4 MiB buffer then costs two page faults
 * instead of a thousand (profiled: page faults were a third of the read
 * path's CPU time). */
#define HUGE (2u << 20)

struct budget {
	size_t chunk;
	unsigned keep;
	atomic_uint_fast64_t used;
	pthread_mutex_t lock;
	struct chunk_buf *pool[POOL_MAX]; /* most recently returned last */
	time_t pooled_at[POOL_MAX];
	unsigned npool;
};

struct budget *budget_new(size_t chunk, unsigned keep)
{
	struct budget *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->chunk = chunk;
	b->keep = keep > POOL_MAX ? POOL_MAX : keep;
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

static char *data_alloc(size_t cap)
{
	if (cap < MAP_MIN)
		return malloc(cap ? cap : 1);
	size_t extra = cap >= HUGE ? HUGE : 0;
	char *p = mmap(NULL, cap + extra, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (extra) {
		/* Aligned to a huge page: unmap what lies before and after. */
		uintptr_t a =
		    ((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1);
		size_t head = a - (uintptr_t)p;
		if (head)
			munmap(p, head);
		if (extra - head)
			munmap((char *)a + cap, extra - head);
		p = (char *)a;
		madvise(p, cap, MADV_HUGEPAGE);
	}
	return p;
}

static void buf_destroy(struct chunk_buf *cb)
{
	if (cb->data && cb->cap >= MAP_MIN)
		munmap(cb->data, cb->cap);
	else
		free(cb->data);
	free(cb->folds);
	free(cb);
}

void budget_free(struct budget *b)
{
	if (!b)
		return;
	for (unsigned i = 0; i < b->npool; i++)
		buf_destroy(b->pool[i]);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

struct chunk_buf *budget_buf_get(struct budget *b, size_t cap)
{
	struct chunk_buf *cb = NULL;

	if (cap == b->chunk) {
		pthread_mutex_lock(&b->lock);
		if (b->npool)
			cb = b->pool[--b->npool];
		pthread_mutex_unlock(&b->lock);
	}
	if (!cb) {
		cb = calloc(1, sizeof(*cb));
		if (!cb)
			return NULL;
		cb->cap = cap;
		cb->data = data_alloc(cap);
		cb->folds = malloc(content_folds_len(cap ? cap : 1));
		if (!cb->data || !cb->folds) {
			buf_destroy(cb);
			return NULL;
		}
		cb->owner = b;
	}
	cb->len = 0;
	atomic_store(&cb->refs, 1);
	atomic_fetch_add(&b->used, cb->cap);
	return cb;
}

struct chunk_buf *chunk_buf_ref(struct chunk_buf *cb)
{
	atomic_fetch_add(&cb->refs, 1);
	return cb;
}

void chunk_buf_unref(struct chunk_buf *cb)
{
	if (!cb || atomic_fetch_sub(&cb->refs, 1) != 1)
		return;
	struct budget *b = cb->owner;
	struct chunk_buf *old[POOL_MAX];
	unsigned nold = 0;
	time_t now = time(NULL);

	atomic_fetch_sub(&b->used, cb->cap);
	pthread_mutex_lock(&b->lock);
	/* The oldest pooled buffers (at the bottom) go once unused a while:
	 * an idle daemon holds no chunk memory. */
	while (nold < b->npool && now - b->pooled_at[nold] > POOL_IDLE_S) {
		old[nold] = b->pool[nold];
		nold++;
	}
	if (nold) {
		memmove(b->pool, b->pool + nold,
			(b->npool - nold) * sizeof(b->pool[0]));
		memmove(b->pooled_at, b->pooled_at + nold,
			(b->npool - nold) * sizeof(b->pooled_at[0]));
		b->npool -= nold;
	}
	if (cb->cap == b->chunk && b->npool < b->keep) {
		b->pooled_at[b->npool] = now;
		b->pool[b->npool++] = cb;
		cb = NULL;
	}
	pthread_mutex_unlock(&b->lock);
	for (unsigned i = 0; i < nold; i++)
		buf_destroy(old[i]);
	if (cb)
		buf_destroy(cb);
}

uint64_t budget_used(const struct budget *b)
{
	return atomic_load(&((struct budget *)b)->used);
}

void mem_lru_init(struct mem_lru *l)
{
	l->done.prev = l->done.next = &l->done;
	l->used.prev = l->used.next = &l->used;
	l->n = l->ndone = 0;
}

int mem_lru_linked(const struct mem_node *n)
{
	return n->next != NULL;
}

void mem_lru_remove(struct mem_lru *l, struct mem_node *n)
{
	if (!n->next)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
	l->n--;
	if (n->in_done)
		l->ndone--;
}

void mem_lru_touch(struct mem_lru *l, struct mem_node *n, int done)
{
	struct mem_node *q = done ? &l->done : &l->used;

	mem_lru_remove(l, n);
	n->next = q;
	n->prev = q->prev;
	q->prev->next = n;
	q->prev = n;
	l->n++;
	n->in_done = done;
	if (done)
		l->ndone++;
}

struct mem_node *mem_lru_first(struct mem_lru *l)
{
	if (l->done.next != &l->done)
		return l->done.next;
	return l->used.next == &l->used ? NULL : l->used.next;
}

struct mem_node *mem_lru_next(struct mem_lru *l, struct mem_node *n)
{
	n = n->next;
	if (n == &l->done)
		n = l->used.next;
	return n == &l->used ? NULL : n;
}
