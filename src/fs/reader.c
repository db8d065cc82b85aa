/* SPDX-License-Identifier: MIT */
/*
 * The read path (reader.h; the files it is made of: reader_impl.h).
 *
 *  - struct rfile is one file version, shared by every open of it; its
 *    sparse chunk table says, per chunk, where the bytes are (memory, the
 *    store) or who is fetching them. Exactly one thread fetches a chunk
 *    (CH_FETCHING); everyone else waits on r->cond, each until its own
 *    read's deadline. That is the single flight.
 *  - a downloaded chunk is READY in memory at once; the store queue writes
 *    it beside the downloads. Later reads of a stored chunk go from the
 *    store straight into the reader's buffer, each block checked.
 *  - memory: every chunk buffer counts (budget.c). Read-ahead is admitted
 *    within the cap; each sequential stream gets a fair share of it (at
 *    least two chunks ahead), and memory is trimmed to what the current
 *    streams need: chunks read to their end first, then least recently
 *    used, never a chunk the store queue is still writing.
 *  - read-ahead: per handle, sequential reads grow a window of chunks that
 *    workers (started as needed, up to `workers`) fetch in parallel;
 *    random reads fetch only what they touch.
 */
#include "config.h"

#include "fs/reader.h"

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
#include "fs/url_cache.h"

#define FAILED_HOLD	   2.0 /* seconds a failed chunk answers its error */
#define STORE_QUEUE_CHUNKS 2   /* chunks the store queue holds at most */
#define UNSTORED_MAX	   (8u << 20) /* read bytes kept waiting for room there */
#define FILE_STREAMS	   4 /* parallel downloads of one file at most */
#define MAX_IDLE_RFILES	   1024
/* Far beyond SharePoint's largest file (250 GB). A larger size is the
 * service's mistake. */
#define MAX_FILE_SIZE (1ULL << 45)

struct reader_handle {
	struct reader *r;
	struct rfile *f;
	uint64_t next_off; /* where a sequential reader reads next */
	uint64_t window;   /* read-ahead chunks; 0 = random access */
	uint64_t ahead;	   /* chunks below this were considered already */
	bool streaming;	   /* counted in r->streams */
};

double reader_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t nchunks_for(const struct reader *r, uint64_t size)
{
	/* An empty file still has chunk 0: fetching it tells the size. */
	return size ? (size + r->chunk - 1) / r->chunk : 1;
}

uint64_t reader_chunk_len(const struct reader *r, const struct rfile *f,
			  uint64_t idx)
{
	uint64_t start = idx * r->chunk;

	if (start >= f->size)
		return 0;
	return f->size - start < r->chunk ? f->size - start : r->chunk;
}

/* ---- memory ------------------------------------------------------------- */

/* Chunks each sequential stream may have ahead of it. */
static uint64_t share_locked(const struct reader *r)
{
	uint64_t total = r->mem_cap / r->chunk;
	uint64_t each = total / (r->streams ? r->streams : 1);

	each = each > 1 ? each - 1 : 0; /* the chunk being read */
	if (each > r->ra_chunks)
		each = r->ra_chunks;
	return each < 2 ? 2 : each;
}

static void chunk_forget_mem(struct reader *r, struct chunk *c)
{
	if (c->buf) {
		chunk_buf_unref(c->buf);
		c->buf = NULL;
	}
	mem_lru_remove(&r->mem, &c->lru);
	mem_lru_remove(&r->unstored, &c->pend);
}

/* A READY chunk goes to the store queue, or waits for room there. */
static void store_or_wait_locked(struct reader *r, struct rfile *f,
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
static void feed_store_locked(struct reader *r)
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
	chunk_forget_mem(r, c);
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
static void trim_locked(struct reader *r)
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

/* ---- rfiles ---------------------------------------------------------------
 */

static size_t rbucket(const char *item_id)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *s = item_id; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % RFILE_BUCKETS);
}

static struct rfile *rfile_find_locked(struct reader *r, const char *item_id,
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

static void rfile_free_locked(struct reader *r, struct rfile *f)
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
static void rfile_busy_locked(struct reader *r, struct rfile *f)
{
	mem_lru_remove(&r->idle, &f->idle);
}

/* f may have become unused: it joins the idle list, whose oldest go past
 * MAX_IDLE_RFILES; a dead version goes at once. */
static void rfile_maybe_idle_locked(struct reader *r, struct rfile *f)
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
		chunk_forget_mem(d->r, c);
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
		chunk_forget_mem(p->r, c);
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
		f->nchunks = nchunks_for(r, total);
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
	memcpy(c->fold, fold, CONTENT_FOLD_LEN);
	if (!c->has_fold)
		f->nfolds++;
	c->has_fold = true;
	return 0;
}

static struct rfile *rfile_new_locked(struct reader *r,
				      const struct reader_file *in, int *err)
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
	f->nchunks = nchunks_for(r, f->size);
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

/* ---- delivering --------------------------------------------------------- */

void reader_fetch_failed(struct reader *r, struct rfile *f, uint64_t idx,
			 int err)
{
	pthread_mutex_lock(&r->lock);
	struct chunk *c =
	    idx < f->nchunks ? chunk_map_get(&f->chunks, idx) : NULL;
	if (c && c->state == CH_FETCHING) {
		c->state = CH_FAILED;
		c->err = err;
		c->failed_at = reader_now();
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void reader_deliver(struct reader *r, struct rfile *f, uint64_t idx,
		    struct chunk_buf *buf)
{
	unsigned char fold[CONTENT_FOLD_LEN];
	size_t nblocks = content_folds_len(buf->len) / CONTENT_FOLD_LEN;

	if (buf->len < buf->cap / 2) {
		/* A small file's bytes in a chunk-sized buffer: keep only
		 * what they need (the big one goes back to the pool). */
		struct chunk_buf *fit = budget_buf_get(r->budget, buf->len);
		if (fit) {
			memcpy(fit->data, buf->data, buf->len);
			memcpy(fit->folds, buf->folds,
			       content_folds_len(buf->len));
			fit->len = buf->len;
			chunk_buf_unref(buf);
			buf = fit;
		}
	}
	memset(fold, 0, sizeof(fold));
	for (size_t b = 0; b < nblocks; b++)
		for (size_t i = 0; i < CONTENT_FOLD_LEN; i++)
			fold[i] ^= buf->folds[b * CONTENT_FOLD_LEN + i];
	pthread_mutex_lock(&r->lock);
	atomic_fetch_add(&r->cache_misses, 1);
	struct chunk *c =
	    idx < f->nchunks ? chunk_map_add(&f->chunks, idx) : NULL;
	if (!c || f->dead || c->state != CH_FETCHING) {
		/* The file turned out shorter, or died meanwhile. */
		if (c && c->state == CH_FETCHING)
			c->state = CH_UNKNOWN;
		chunk_buf_unref(buf);
		goto out;
	}
	c->f = f;
	memcpy(c->fold, fold, CONTENT_FOLD_LEN);
	if (!c->has_fold)
		f->nfolds++;
	c->has_fold = true;
	chunk_forget_mem(r, c);
	c->state = CH_READY;
	c->buf = buf;
	c->stored = false;
	c->storing = false;
	mem_lru_touch(&r->mem, &c->lru, 0);
	store_or_wait_locked(r, f, c);
	verify_locked(r, f);
	if (!f->opens && c->state == CH_READY && !r->sq) {
		/* Its reader left, and there is no store: nobody will want
		 * these bytes from memory. */
		chunk_forget_mem(r, c);
		c->state = CH_UNKNOWN;
	}
	trim_locked(r);
out:
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* The store queue's answer for a chunk (its thread, no lock held). */
static void stored_cb(void *ctx, const char *item_id, const char *version,
		      uint64_t index, struct chunk_buf *buf, int stored)
{
	struct reader *r = ctx;

	pthread_mutex_lock(&r->lock);
	struct rfile *f = rfile_find_locked(r, item_id, version);
	struct chunk *c = f ? chunk_map_get(&f->chunks, index) : NULL;
	if (c && c->state == CH_READY && c->buf == buf) {
		c->storing = false;
		c->stored = stored;
		if (stored && !f->opens) {
			/* Prefetched, or its reader left: the store has it, so
			 * memory need not. */
			chunk_forget_mem(r, c);
			c->state = CH_STORED;
		}
		trim_locked(r);
	}
	feed_store_locked(r);
	pthread_mutex_unlock(&r->lock);
}

/* ---- reading --------------------------------------------------------------
 */

/* What open and read may tell an application: EIO for any failure to get
 * the bytes (a version gone, a reset connection, a timeout), EACCES when
 * the service refuses them, ENOMEM. A network errno such as ECONNRESET
 * would puzzle cat and cp. */
static int reader_errno(int err)
{
	if (err >= 0 || err == -EACCES || err == -ENOMEM || err == -EINTR ||
	    err == -EFBIG)
		return err;
	return -EIO;
}

/* Waits for a state change until deadline; -ETIMEDOUT past it. */
static int wait_locked(struct reader *r, double deadline)
{
	double left = deadline - reader_now();

	if (left <= 0)
		return -ETIMEDOUT;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	double ns = (double)until.tv_nsec + (left - (double)(time_t)left) * 1e9;
	until.tv_sec += (time_t)left + (time_t)(ns / 1e9);
	until.tv_nsec = (long)(ns - (double)(long)(ns / 1e9) * 1e9);
	pthread_cond_timedwait(&r->cond, &r->lock, &until);
	return 0;
}

/* Copies up to n bytes at offset in of chunk idx into dst; *got receives
 * the count. r->lock held on entry and exit. */
static int chunk_bytes_locked(struct reader *r, struct rfile *f, uint64_t idx,
			      uint64_t in, char *dst, size_t n, double deadline,
			      size_t *got)
{
	*got = 0;
	for (;;) {
		if (f->dead)
			return f->dead;
		if (idx >= f->nchunks)
			return 0;
		uint64_t clen = reader_chunk_len(r, f, idx);
		if (in >= clen)
			return 0;
		size_t want = n < clen - in ? n : (size_t)(clen - in);
		struct chunk *c = chunk_map_add(&f->chunks, idx);
		if (!c)
			return -ENOMEM;
		c->f = f;

		switch (c->state) {
		case CH_READY:
			if (c->buf->len < in + want) {
				/* cannot happen; never serve it */
				chunk_forget_mem(r, c);
				c->state = CH_UNKNOWN;
				continue;
			}
			memcpy(dst, c->buf->data + in, want);
			/* Read to its end: a sequential reader is done with
			 * it, so it goes first when memory is short (and a
			 * straggling piece read after the end does not bring
			 * it back). */
			mem_lru_touch(&r->mem, &c->lru,
				      in + want == clen || c->lru.in_done);
			*got = want;
			return 0;
		case CH_FETCHING:
			if (wait_locked(r, deadline) != 0)
				return -ETIMEDOUT;
			continue;
		case CH_FAILED:
			if (reader_now() - c->failed_at < FAILED_HOLD)
				return c->err;
			c->state = CH_UNKNOWN;
			continue;
		case CH_STORED: {
			pthread_mutex_unlock(&r->lock);
			int e = content_read(r->store, f->item_id, f->version,
					     idx, (size_t)in, dst, want);
			pthread_mutex_lock(&r->lock);
			if (!e) {
				atomic_fetch_add(&r->cache_hits, 1);
				*got = want;
				return 0;
			}
			if (e != -ENOENT && e != -EUCLEAN)
				log_debug("content cache: reading item %s: "
					  "%s; downloading instead",
					  f->item_id, strerror(-e));
			/* Evicted, damaged or unreadable: fetch, unless
			 * someone else acted meanwhile. */
			if (c->state == CH_STORED)
				c->state = CH_UNKNOWN;
			continue;
		}
		case CH_UNKNOWN:
		case CH_QUEUED:
		default: {
			/* Queued for a worker: this reader takes it over. */
			c->state = CH_FETCHING;
			pthread_mutex_unlock(&r->lock);
			int e = fetch_chunk(r, f, idx, deadline);
			pthread_mutex_lock(&r->lock);
			if (e)
				return e;
			continue;
		}
		}
	}
}

/* ---- read-ahead and workers ---------------------------------------------- */

static void *worker_main(void *arg);

/* What a job will bring in: a fetch takes a whole chunk buffer. */
static uint64_t job_bytes(const struct reader *r)
{
	return r->chunk;
}

/* Memory in use or promised stays within the cap: read-ahead and prefetch
 * wait for readers to catch up instead. */
static bool room_for_job_locked(struct reader *r, uint64_t need)
{
	if (budget_used(r->budget) + r->jobs_bytes + need > r->mem_cap)
		trim_locked(r);
	return budget_used(r->budget) + r->jobs_bytes + need <= r->mem_cap;
}

/* Queues chunk idx of f (UNKNOWN or FAILED) for a worker, starting one
 * when none waits. */
static bool queue_job_locked(struct reader *r, struct rfile *f, struct chunk *c,
			     bool prefetch)
{
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return false;
	j->f = f;
	j->idx = c->idx;
	j->prefetch = prefetch;
	j->bytes = job_bytes(r);
	j->next = NULL;
	if (r->jq_tail)
		r->jq_tail->next = j;
	else
		r->jq_head = j;
	r->jq_tail = j;
	rfile_busy_locked(r, f);
	f->jobs++;
	r->jobs_bytes += j->bytes;
	c->state = CH_QUEUED;
	if (!r->nwaiting && r->workers && r->nstarted < r->max_workers &&
	    pthread_create(&r->workers[r->nstarted], NULL, worker_main, r) == 0)
		r->nstarted++;
	pthread_cond_signal(&r->job_cond);
	return true;
}

static void stream_locked(struct reader_handle *h, bool on)
{
	if (h->streaming == on)
		return;
	h->streaming = on;
	if (on)
		h->r->streams++;
	else
		h->r->streams--;
}

/* Sequential readers get the next chunks queued for the workers. */
static void read_ahead_locked(struct reader_handle *h, uint64_t off,
			      size_t size)
{
	struct reader *r = h->r;
	struct rfile *f = h->f;

	/* The kernel sends a sequential reader's requests in parallel, so
	 * they arrive a little out of order: near the last end counts. */
	const uint64_t slack = 4u << 20;
	bool sequential =
	    off + slack >= h->next_off && off <= h->next_off + slack;

	if (sequential)
		h->window = h->window ? h->window * 2 : 1;
	else
		h->window = 0;
	stream_locked(h, h->window > 0);
	uint64_t share = share_locked(r);
	if (h->window > share)
		h->window = share;
	if (h->window > r->ra_chunks)
		h->window = r->ra_chunks;
	if (!sequential || off + size > h->next_off)
		h->next_off = off + size;
	if (!h->window || !r->workers || !r->max_workers || f->dead)
		return;
	uint64_t last = (off + size - 1) / r->chunk;
	uint64_t from = last + 1 > h->ahead ? last + 1 : h->ahead;
	uint64_t to = last + h->window;
	if (to >= f->nchunks)
		to = f->nchunks - 1;
	for (uint64_t i = from; i <= to && i < f->nchunks; i++) {
		struct chunk *c = chunk_map_add(&f->chunks, i);
		if (!c) {
			to = i - 1;
			break;
		}
		c->f = f;
		if (c->state != CH_UNKNOWN && c->state != CH_FAILED)
			continue; /* in memory, stored, or on its way */
		/* More parallel ranges of one file stop paying off (measured)
		 * and starve the store's thread of CPU. */
		if (f->jobs >= FILE_STREAMS ||
		    !room_for_job_locked(r, job_bytes(r)) ||
		    !queue_job_locked(r, f, c, false)) {
			to = i - 1;
			break;
		}
		atomic_fetch_add(&r->readahead_chunks, 1);
	}
	if (to + 1 > h->ahead)
		h->ahead = to + 1;
}

ssize_t reader_read(struct reader_handle *h, char *buf, size_t size,
		    uint64_t off)
{
	struct reader *r = h->r;
	struct rfile *f = h->f;
	double deadline = reader_now() + r->read_timeout;
	size_t done = 0;
	int err = 0;

	pthread_mutex_lock(&r->lock);
	if (f->dead) {
		err = f->dead;
		goto out;
	}
	if (off >= f->size)
		goto out;
	if (size > f->size - off)
		size = (size_t)(f->size - off);
	while (done < size) {
		uint64_t at = off + done;
		uint64_t idx = at / r->chunk, in = at % r->chunk;
		size_t n = size - done, got = 0;
		if (n > r->chunk - in)
			n = (size_t)(r->chunk - in);
		err = chunk_bytes_locked(r, f, idx, in, buf + done, n, deadline,
					 &got);
		if (err || !got)
			break;
		done += got;
	}
	if (err == -ETIMEDOUT) {
		atomic_fetch_add(&r->timeouts, 1);
		log_warn("item %s: no bytes at %llu within read_timeout "
			 "(%.0f s)",
			 f->item_id, (unsigned long long)off, r->read_timeout);
	}
	if (!err && done)
		read_ahead_locked(h, off, done);
out:
	pthread_mutex_unlock(&r->lock);
	/* A short read would tell the kernel the file ends here: an error
	 * is the honest answer. */
	return err ? reader_errno(err) : (ssize_t)done;
}

static void *worker_main(void *arg)
{
	struct reader *r = arg;

	pthread_setname_np(pthread_self(), "spfs-fetch");
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		struct job *j = r->jq_head;
		if (!j) {
			r->nwaiting++;
			pthread_cond_wait(&r->job_cond, &r->lock);
			r->nwaiting--;
			continue;
		}
		r->jq_head = j->next;
		if (!r->jq_head)
			r->jq_tail = NULL;
		struct rfile *f = j->f;
		uint64_t idx = j->idx, bytes = j->bytes;
		bool prefetch = j->prefetch;
		free(j);
		struct chunk *c = chunk_map_get(&f->chunks, idx);
		bool wanted = c && c->state == CH_QUEUED && !f->dead &&
			      (f->opens || prefetch);
		if (c && c->state == CH_QUEUED && !wanted)
			c->state = CH_UNKNOWN; /* its reader has gone */
		if (wanted) {
			c->state = CH_FETCHING;
			pthread_mutex_unlock(&r->lock);
			fetch_chunk(r, f, idx, reader_now() + r->read_timeout);
			pthread_mutex_lock(&r->lock);
		}
		r->jobs_bytes -= bytes;
		f->jobs--;
		rfile_maybe_idle_locked(r, f);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int reader_start(struct reader *r)
{
	if (r->workers)
		return 0;
	if (r->sq) {
		int err = store_queue_start(r->sq);
		if (err)
			return err;
	}
	pthread_mutex_lock(&r->lock);
	r->workers =
	    calloc(r->max_workers ? r->max_workers : 1, sizeof(*r->workers));
	pthread_mutex_unlock(&r->lock);
	return r->workers ? 0 : -ENOMEM;
}

/* ---- lifecycle ------------------------------------------------------------
 */

struct reader *reader_new(struct graph *g, struct content *store,
			  const char *drive_id, const struct reader_config *cfg,
			  int *err)
{
	struct reader *r = calloc(1, sizeof(*r));

	*err = -ENOMEM;
	if (!r || !(r->drive_id = strdup(drive_id))) {
		free(r);
		return NULL;
	}
	r->g = g;
	r->store = store;
	r->chunk = cfg->chunk_size ? cfg->chunk_size : 4u << 20;
	r->small = cfg->small_file < r->chunk ? cfg->small_file : r->chunk;
	r->ra_chunks = (cfg->readahead + r->chunk - 1) / r->chunk;
	r->max_workers = cfg->workers ? cfg->workers : 16;
	if (!r->ra_chunks)
		r->max_workers = 0;
	r->read_timeout = cfg->read_timeout > 0 ? cfg->read_timeout : 60;
	/* Eight sequential readers with two chunks ahead and one being read
	 * each, within a fixed bound: RSS must not follow the file size or
	 * the number of open files. */
	r->mem_cap = cfg->memory ? cfg->memory : 24 * r->chunk;
	if (!cfg->memory && r->mem_cap > (96u << 20))
		r->mem_cap = 96u << 20;
	if (r->mem_cap < 3 * r->chunk)
		r->mem_cap = 3 * r->chunk;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	pthread_cond_init(&r->job_cond, NULL);
	mem_lru_init(&r->idle);
	mem_lru_init(&r->mem);
	mem_lru_init(&r->unstored);
	r->budget =
	    budget_new((size_t)r->chunk, 2);
	r->urls = url_cache_new();
	if (!r->budget || !r->urls)
		goto fail;
	if (store) {
		struct store_queue_config qc = {
		    .max_bytes = STORE_QUEUE_CHUNKS * r->chunk,
		    .batch_bytes = 2 * r->chunk,
		    .done = stored_cb,
		    .ctx = r,
		};
		r->sq = store_queue_new(store, &qc);
		if (!r->sq)
			goto fail;
	}
	*err = 0;
	return r;
fail:
	reader_free(r);
	return NULL;
}

void reader_free(struct reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->job_cond);
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < r->nstarted; i++)
		pthread_join(r->workers[i], NULL);
	free(r->workers);
	/* Writes what is queued; its answers still find the files. */
	store_queue_free(r->sq);
	while (r->jq_head) {
		struct job *j = r->jq_head;
		r->jq_head = j->next;
		free(j);
	}
	for (size_t b = 0; b < RFILE_BUCKETS; b++)
		while (r->files[b])
			rfile_free_locked(r, r->files[b]);
	url_cache_free(r->urls);
	budget_free(r->budget);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	pthread_cond_destroy(&r->job_cond);
	free(r->drive_id);
	free(r);
}

void reader_note_url(struct reader *r, const char *item_id, const char *url)
{
	url_cache_note(r->urls, item_id, url);
}

/* Fetches chunk 0 of a version whose size is not known yet: its response
 * carries the size (and the first read wants those bytes anyway). */
static int confirm_size_locked(struct reader *r, struct rfile *f,
			       double deadline)
{
	while (!f->size_confirmed) {
		struct chunk *c = chunk_map_add(&f->chunks, 0);
		if (!c)
			return -ENOMEM;
		c->f = f;
		if (f->dead)
			return f->dead;
		if (c->state == CH_FETCHING) {
			if (wait_locked(r, deadline) != 0)
				return -ETIMEDOUT;
			continue;
		}
		if (c->state == CH_FAILED &&
		    reader_now() - c->failed_at < FAILED_HOLD)
			return c->err;
		c->state = CH_FETCHING;
		pthread_mutex_unlock(&r->lock);
		int err = fetch_chunk(r, f, 0, deadline);
		pthread_mutex_lock(&r->lock);
		if (err)
			return err;
		if (!f->size_confirmed) {
			/* No length in the answer: what came is the size
			 * (fetch_chunk saw the body end). */
			f->size_confirmed = true;
			reader_store_file_row_locked(r, f);
		}
	}
	return 0;
}

int reader_open(struct reader *r, const struct reader_file *in,
		struct reader_handle **out, struct reader_open_result *res)
{
	struct reader_handle *h = calloc(1, sizeof(*h));
	int err = 0;

	memset(res, 0, sizeof(*res));
	*out = NULL;
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&r->lock);
	struct rfile *f = rfile_find_locked(r, in->item_id, in->version);
	/* Pages the kernel kept are this version's only if this version was
	 * read through this mount before (and passed its checks). */
	res->keep_cache = f != NULL;
	if (!f)
		f = rfile_new_locked(r, in, &err);
	if (!f)
		goto out;
	rfile_busy_locked(r, f);
	f->opens++;
	h->r = r;
	h->f = f;
	/* The evictor leaves open files' chunks for last. */
	if (r->store)
		content_pin(r->store, f->item_id);
	err = confirm_size_locked(r, f, reader_now() + r->read_timeout);
	if (err) {
		if (r->store)
			content_unpin(r->store, f->item_id);
		f->opens--;
		rfile_maybe_idle_locked(r, f);
		goto out;
	}
	res->size = f->size;
	res->size_changed = f->size_changed;
	*out = h;
	h = NULL;
out:
	pthread_mutex_unlock(&r->lock);
	free(h);
	return reader_errno(err);
}

int reader_prefetch(struct reader *r, const struct reader_file *files, size_t n)
{
	int queued = 0, err;

	/* Only into the store: prefetched bytes must not crowd memory. */
	if (!r->store || !r->workers || !r->max_workers)
		return 0;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < n && !r->stop; i++) {
		const struct reader_file *in = &files[i];
		if (in->size > r->small || !room_for_job_locked(r, r->chunk))
			continue;
		struct rfile *f =
		    rfile_find_locked(r, in->item_id, in->version);
		if (!f)
			f = rfile_new_locked(r, in, &err);
		if (!f || f->dead || f->nchunks != 1)
			continue;
		struct chunk *c = chunk_map_add(&f->chunks, 0);
		if (!c)
			continue;
		c->f = f;
		if (c->state != CH_UNKNOWN)
			continue; /* stored, in memory, queued or failed */
		if (queue_job_locked(r, f, c, true)) {
			atomic_fetch_add(&r->prefetched_files, 1);
			queued++;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return queued;
}

void reader_release(struct reader_handle *h)
{
	struct reader *r;

	if (!h)
		return;
	r = h->r;
	pthread_mutex_lock(&r->lock);
	struct rfile *f = h->f;
	if (r->store)
		content_unpin(r->store, f->item_id);
	stream_locked(h, false);
	f->opens--;
	rfile_maybe_idle_locked(r, f);
	trim_locked(r);
	pthread_mutex_unlock(&r->lock);
	free(h);
}

void reader_forget(struct reader *r, const char *item_id, const char *keep)
{
	bool busy = false;

	url_cache_drop(r->urls, item_id);
	pthread_mutex_lock(&r->lock);
	struct rfile **pp = &r->files[rbucket(item_id)];
	while (*pp) {
		struct rfile *f = *pp;
		if (strcmp(f->item_id, item_id) != 0 ||
		    (keep && strcmp(f->version, keep) == 0)) {
			pp = &f->next;
			continue;
		}
		if (f->opens || f->jobs) {
			busy = true; /* its reader keeps the old version */
			pp = &f->next;
			continue;
		}
		rfile_free_locked(r, f); /* unlinks *pp */
	}
	if (!busy && r->sq)
		store_queue_drop_item(r->sq, item_id, keep);
	pthread_mutex_unlock(&r->lock);
}

void reader_get_stats(struct reader *r, struct reader_stats *out)
{
	struct store_queue_stats qs = {0};

	memset(out, 0, sizeof(*out));
	out->downloads = atomic_load(&r->downloads);
	out->download_bytes = atomic_load(&r->download_bytes);
	out->download_retries = atomic_load(&r->download_retries);
	out->url_refreshes = atomic_load(&r->url_refreshes);
	out->cache_hits = atomic_load(&r->cache_hits);
	out->cache_misses = atomic_load(&r->cache_misses);
	out->readahead_chunks = atomic_load(&r->readahead_chunks);
	out->prefetched_files = atomic_load(&r->prefetched_files);
	out->hash_verified = atomic_load(&r->hash_verified);
	out->hash_mismatches = atomic_load(&r->hash_mismatches);
	out->size_corrections = atomic_load(&r->size_corrections);
	out->read_timeouts = atomic_load(&r->timeouts);
	if (r->sq)
		store_queue_get_stats(r->sq, &qs);
	out->chunks_stored = qs.stored;
	out->store_errors = qs.failed;
	out->store_skipped = atomic_load(&r->store_lost);
	out->store_queued_bytes = qs.queued_bytes;
	out->memory_bytes = budget_used(r->budget);
	pthread_mutex_lock(&r->lock);
	for (size_t b = 0; b < RFILE_BUCKETS; b++)
		for (struct rfile *f = r->files[b]; f; f = f->next)
			out->open_files += f->opens;
	out->streams = r->streams;
	pthread_mutex_unlock(&r->lock);
}
