/* SPDX-License-Identifier: MIT */
/*
 * The sparse chunk table (chunk_map.h): open addressing on the chunk index
 * with linear probing, at most half full; entries are allocated one by one
 * so their addresses stay put when the table grows.
 */
#include "config.h"

#include "fs/chunk_map.h"

#include <stdlib.h>
#include <string.h>

void chunk_map_init(struct chunk_map *m)
{
	memset(m, 0, sizeof(*m));
}

static size_t slot_of(uint64_t idx, size_t cap)
{
	/* Fibonacci hashing: consecutive indexes spread out. */
	return (size_t)((idx * 11400714819323198485ull) >> 17) & (cap - 1);
}

void chunk_map_release(struct chunk_map *m, void (*drop)(struct chunk *))
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i]) {
			if (drop)
				drop(m->slots[i]);
			free(m->slots[i]);
		}
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

struct chunk *chunk_map_get(const struct chunk_map *m, uint64_t idx)
{
	if (!m->cap)
		return NULL;
	for (size_t i = slot_of(idx, m->cap);; i = (i + 1) & (m->cap - 1)) {
		struct chunk *c = m->slots[i];
		if (!c || c->idx == idx)
			return c;
	}
}

static void put_slot(struct chunk **slots, size_t cap, struct chunk *c)
{
	size_t j = slot_of(c->idx, cap);

	while (slots[j])
		j = (j + 1) & (cap - 1);
	slots[j] = c;
}

static int grow(struct chunk_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	struct chunk **slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		struct chunk *c = m->slots[i];
		if (!c)
			continue;
		put_slot(slots, cap, c);
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

struct chunk *chunk_map_add(struct chunk_map *m, uint64_t idx)
{
	struct chunk *c = chunk_map_get(m, idx);

	if (c)
		return c;
	if ((m->n + 1) * 2 > m->cap && grow(m) != 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->idx = idx;
	size_t i = slot_of(idx, m->cap);
	while (m->slots[i])
		i = (i + 1) & (m->cap - 1);
	m->slots[i] = c;
	m->n++;
	return c;
}

void chunk_map_truncate(struct chunk_map *m, uint64_t n,
			void (*drop)(struct chunk *))
{
	size_t keep = 0, cap = 16;

	/* Rebuild: removing from a linear-probing table in place would need
	 * tombstones, and this happens at most once per file version. Out of
	 * memory, the entries past n stay: nothing reads past the size. */
	for (size_t i = 0; i < m->cap; i++)
		keep += m->slots[i] && m->slots[i]->idx < n;
	while (keep * 2 > cap)
		cap *= 2;
	struct chunk **slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return;
	for (size_t i = 0; i < m->cap; i++) {
		struct chunk *c = m->slots[i];
		if (!c)
			continue;
		if (c->idx < n) {
			put_slot(slots, cap, c);
			continue;
		}
		if (drop)
			drop(c);
		free(c);
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	m->n = keep;
}

void chunk_map_each(const struct chunk_map *m,
		    void (*fn)(struct chunk *, void *), void *ctx)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i])
			fn(m->slots[i], ctx);
}
