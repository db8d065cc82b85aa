/* SPDX-License-Identifier: MIT */
/*
 * File versions (reader_impl.h): the table of rfiles by item, their idle
 * list, their sizes (the first response's length wins), what the store
 * already has of them (scanned with their folds at creation, so a version
 * stored whole is checked before its first byte is served), their file rows
 * and drops.
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

#define MAX_IDLE_RFILES 1024
/* Far beyond SharePoint's largest file (250 GB). A larger size is the
 * service's mistake. */
#define MAX_FILE_SIZE (1ULL << 45)

uint64_t rfile_nchunks(const struct reader *r, uint64_t size)
{
	/* An empty file still has chunk 0: fetching it tells the size. */
	return size ? (size + r->chunk - 1) / r->chunk : 1;
}

static size_t rbucket(const char *item_id)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *s = item_id; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % RFILE_BUCKETS);
}

struct rfile *rfile_find_locked(struct reader *r, const char *item_id,
				const char *version)
{
	for (struct rfile *f = r->files[rbucket(item_id)]; f; f = f->next)
		if (strcmp(f->item_id, item_id) == 0 &&
		    strcmp(f->version, version) == 0 && !f->dead)
			return f;
	return NULL;
}

/* For chunk_map: a chunk going away (already out of the memory LRU). */
static void drop_chunk_cb(struct chunk *c)
{
	chunk_buf_unref(c->buf);
	c->buf = NULL;
}

void rfile_free_locked(struct reader *r, struct rfile *f)
{
	for (struct rfile **pp = &r->files[rbucket(f->item_id)]; *pp;
	     pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	mem_lru_remove(&r->idle, &f->idle);
	/* The memory lists must not point into freed chunks. */
	for (size_t i = 0; i < f->chunks.cap; i++) {
		struct chunk *c = f->chunks.slots[i];
		if (c) {
			mem_lru_remove(&r->mem, &c->lru);
			mem_lru_remove(&r->unstored, &c->pend);
		}
	}
	chunk_map_release(&f->chunks, drop_chunk_cb);
	free(f->item_id);
	free(f->version);
	free(f->qxh);
	free(f->name);
	free(f->url);
	free(f->etag);
	free(f);
}

/* f is used again (an open or a job). */
void rfile_busy_locked(struct reader *r, struct rfile *f)
{
	mem_lru_remove(&r->idle, &f->idle);
}

/* f may have become unused: it joins the idle list, whose oldest go past
 * MAX_IDLE_RFILES; a dead version goes at once. */
void rfile_maybe_idle_locked(struct reader *r, struct rfile *f)
{
	if (f->opens || f->jobs)
		return;
	if (f->dead) {
		rfile_free_locked(r, f);
		return;
	}
	mem_lru_touch(&r->idle, &f->idle, 0);
	while (r->idle.n > MAX_IDLE_RFILES) {
		struct mem_node *n = mem_lru_first(&r->idle);
		rfile_free_locked(r, container_of(n, struct rfile, idle));
	}
}

void reader_store_file_row_locked(struct reader *r, struct rfile *f)
{
	if (!r->sq)
		return;
	struct content_file row = {.size = f->size,
				   .verified = f->verify == 1,
				   .mismatches = f->mismatches};
	store_queue_file_row(r->sq, f->item_id, f->version, &row);
}

struct drop_ctx {
	struct reader *r;
	struct rfile *f;
};

static void forget_chunk(struct chunk *c, void *ctx)
{
	struct drop_ctx *d = ctx;

	if (c->state == CH_READY || c->state == CH_STORED) {
		resident_forget_locked(d->r, c);
		c->state = CH_UNKNOWN;
	}
	c->stored = false;
	c->storing = false;
	c->has_fold = false;
}

void reader_drop_version_locked(struct reader *r, struct rfile *f,
				bool keep_row)
{
	struct drop_ctx d = {r, f};

	chunk_map_each(&f->chunks, forget_chunk, &d);
	f->nfolds = 0;
	if (r->sq)
		store_queue_drop_version(r->sq, f->item_id, f->version,
					 keep_row);
}

struct past_end {
	struct reader *r;
	struct rfile *f;
};

/* Chunks past a new end leave memory; folds below it are counted again. */
static void past_end(struct chunk *c, void *ctx)
{
	struct past_end *p = ctx;

	if (c->idx >= p->f->nchunks)
		resident_forget_locked(p->r, c);
	else if (c->has_fold)
		p->f->nfolds++;
}

int reader_size_seen_locked(struct reader *r, struct rfile *f, uint64_t total)
{
	if (f->size_confirmed) {
		if (total == f->size)
			return 0;
		log_warn("item %s changed on the server while open (%llu "
			 "bytes, was %llu): reads fail until it is opened "
			 "again",
			 f->item_id, (unsigned long long)total,
			 (unsigned long long)f->size);
		f->dead = -ESTALE;
		return -ESTALE;
	}
	if (total > MAX_FILE_SIZE) {
		log_warn("item %s: the server claims %llu bytes; refusing it",
			 f->item_id, (unsigned long long)total);
		return -EFBIG;
	}
	if (total != f->size) {
		log_info("item %s: the server has %llu bytes where the listing "
			 "said %llu; using the served size",
			 f->item_id, (unsigned long long)total,
			 (unsigned long long)f->size);
		/* Only the confirming fetch (chunk 0) is running now: nobody
		 * reads past the listed size before the size is known. */
		struct past_end p = {r, f};
		f->size = total;
		f->nchunks = rfile_nchunks(r, total);
		f->nfolds = 0;
		chunk_map_each(&f->chunks, past_end, &p);
		chunk_map_truncate(&f->chunks, f->nchunks, drop_chunk_cb);
		f->size_changed = true;
		atomic_fetch_add(&r->size_corrections, 1);
	}
	f->size_confirmed = true;
	reader_store_file_row_locked(r, f);
	return 0;
}

struct scan_ctx {
	struct reader *r;
	struct rfile *f;
	int err;
};

static int scan_chunk(void *ctx, uint64_t idx, uint64_t len,
		      const unsigned char fold[CONTENT_FOLD_LEN])
{
	struct scan_ctx *s = ctx;
	struct rfile *f = s->f;

	if (idx >= f->nchunks ||
	    (f->size_confirmed && len != reader_chunk_len(s->r, f, idx)))
		return 0; /* another size's: read as missing */
	struct chunk *c = chunk_map_add(&f->chunks, idx);
	if (!c)
		return -ENOMEM;
	c->f = f;
	c->state = CH_STORED;
	c->stored = true;
	memcpy(c->fold, fold, CONTENT_FOLD_LEN);
	if (!c->has_fold)
		f->nfolds++;
	c->has_fold = true;
	return 0;
}

struct rfile *rfile_new_locked(struct reader *r, const struct reader_file *in,
			       int *err)
{
	struct rfile *f = calloc(1, sizeof(*f));

	*err = -ENOMEM;
	if (!f)
		return NULL;
	chunk_map_init(&f->chunks);
	f->item_id = strdup(in->item_id);
	f->version = strdup(in->version);
	f->qxh = in->quickxorhash ? strdup(in->quickxorhash) : NULL;
	f->name = in->name ? strdup(in->name) : NULL;
	f->lenient = in->lenient_hash;
	f->size = in->size;
	if (!f->item_id || !f->version || (in->quickxorhash && !f->qxh))
		goto fail;
	f->next = r->files[rbucket(f->item_id)];
	r->files[rbucket(f->item_id)] = f;
	if (r->store) {
		struct content_file row;
		if (content_file_get(r->store, f->item_id, f->version, &row) ==
		    0) {
			f->size = row.size;
			f->size_confirmed = true;
			f->mismatches = row.mismatches;
			f->verify = row.verified			? 1
				    : f->lenient && row.mismatches >= 2 ? 2
									: 0;
		} else {
			/* A new version: older ones are of no more use,
			 * unless a reader still has one open. */
			bool old_open = false;
			for (struct rfile *o = r->files[rbucket(f->item_id)]; o;
			     o = o->next)
				if (o != f &&
				    strcmp(o->item_id, f->item_id) == 0 &&
				    (o->opens || o->jobs))
					old_open = true;
			if (!old_open && r->sq)
				store_queue_drop_item(r->sq, f->item_id,
						      f->version);
		}
	}
	if (f->size > MAX_FILE_SIZE) {
		*err = -EFBIG;
		goto fail;
	}
	f->nchunks = rfile_nchunks(r, f->size);
	if (r->store) {
		/* What the store has, with its folds: stored chunks are read
		 * from there, and a version stored whole is checked before
		 * its first byte is served. */
		struct scan_ctx s = {r, f, 0};
		if (content_scan(r->store, f->item_id, f->version, scan_chunk,
				 &s) == -ENOMEM)
			goto fail;
		if (f->verify == 0 && f->size_confirmed &&
		    f->nfolds == f->nchunks) {
			verify_locked(r, f);
			if (f->dead == -EIO) {
				/* Not served yet: download instead. */
				log_info("item %s: its cached bytes are "
					 "downloaded again",
					 f->item_id);
				f->dead = 0;
			}
		}
	}
	rfile_maybe_idle_locked(r, f); /* until reader_open counts its open */
	*err = 0;
	return f;
fail:
	rfile_free_locked(r, f);
	return NULL;
}

bool rfile_forget_locked(struct reader *r, const char *item_id,
			 const char *keep)
{
	bool busy = false;
	struct rfile **pp = &r->files[rbucket(item_id)];

	while (*pp) {
		struct rfile *f = *pp;
		if (strcmp(f->item_id, item_id) != 0 ||
		    (keep && strcmp(f->version, keep) == 0)) {
			pp = &f->next;
			continue;
		}
		if (f->opens || f->jobs) {
			busy = true;
			pp = &f->next;
			continue;
		}
		rfile_free_locked(r, f); /* unlinks *pp */
	}
	return busy;
}
