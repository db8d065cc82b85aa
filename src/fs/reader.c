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

double reader_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t reader_chunk_len(const struct reader *r, const struct rfile *f,
			  uint64_t idx)
{
	uint64_t start = idx * r->chunk;

	if (start >= f->size)
		return 0;
	return f->size - start < r->chunk ? f->size - start : r->chunk;
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
	resident_forget_locked(r, c);
	c->state = CH_READY;
	c->buf = buf;
	c->stored = false;
	c->storing = false;
	mem_lru_touch(&r->mem, &c->lru, 0);
	resident_store_or_wait_locked(r, f, c);
	verify_locked(r, f);
	if (!f->opens && c->state == CH_READY && !r->sq) {
		/* Its reader left, and there is no store: nobody will want
		 * these bytes from memory. */
		resident_forget_locked(r, c);
		c->state = CH_UNKNOWN;
	}
	resident_trim_locked(r);
out:
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void reader_loaded(struct reader *r, struct rfile *f, uint64_t idx,
		   struct chunk_buf *buf)
{
	pthread_mutex_lock(&r->lock);
	atomic_fetch_add(&r->cache_hits, 1);
	struct chunk *c =
	    idx < f->nchunks ? chunk_map_get(&f->chunks, idx) : NULL;
	if (!c || f->dead || c->state != CH_FETCHING) {
		if (c && c->state == CH_FETCHING)
			c->state = CH_STORED;
		chunk_buf_unref(buf);
	} else {
		c->state = CH_READY;
		c->buf = buf;
		c->stored = true;
		c->storing = false;
		mem_lru_touch(&r->mem, &c->lru, 0);
		resident_trim_locked(r);
	}
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
			resident_forget_locked(r, c);
			c->state = CH_STORED;
		}
		resident_trim_locked(r);
	}
	resident_feed_store_locked(r);
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

/* Brings chunk idx into memory (CH_READY, *out set): waits for its fetch,
 * takes a queued fetch over or downloads it, and, with load, reads a stored
 * chunk into memory whole. Without load a stored chunk is left where it is
 * and 1 is returned: the caller reads its piece from the store. 0 READY, 1,
 * -errno. r->lock held on entry and exit (released around the work). */
static int make_ready_locked(struct reader *r, struct rfile *f, uint64_t idx,
			     double deadline, bool load, struct chunk **out)
{
	for (;;) {
		if (f->dead)
			return f->dead;
		struct chunk *c = chunk_map_add(&f->chunks, idx);
		if (!c)
			return -ENOMEM;
		c->f = f;
		*out = c;
		switch (c->state) {
		case CH_READY:
			if (c->buf->len < reader_chunk_len(r, f, idx)) {
				/* cannot happen; never serve it */
				resident_forget_locked(r, c);
				c->state = CH_UNKNOWN;
				continue;
			}
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
		case CH_QUEUED:
		case CH_STORED: {
			/* A queued download: this reader takes it over. */
			if (!c->stored)
				goto fetch;
			/* Stored (or queued to be loaded from the store). */
			if (!load) {
				c->state = CH_STORED;
				return 1;
			}
			c->state = CH_FETCHING;
			pthread_mutex_unlock(&r->lock);
			int e = fetch_from_store(r, f, idx);
			pthread_mutex_lock(&r->lock);
			if (e) /* evicted or damaged: download it */
				goto fetch_locked;
			continue;
		}
		case CH_UNKNOWN:
		default: {
		fetch:
			c->state = CH_FETCHING;
		fetch_locked:
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

/* A read has taken bytes of a chunk in memory: read to its end, a
 * sequential reader is done with it, so it goes first when memory is short
 * (and a straggling piece read after the end does not bring it back). */
static void used_locked(struct reader *r, struct chunk *c, bool to_end)
{
	mem_lru_touch(&r->mem, &c->lru, to_end || c->lru.in_done);
}

/* Copies up to n bytes at offset in of chunk idx into dst; *got receives
 * the count. A sequential reader (whole) gets the chunk loaded into memory;
 * a random one reads just its piece from the store. r->lock held. */
static int chunk_bytes_locked(struct reader *r, struct rfile *f, uint64_t idx,
			      uint64_t in, char *dst, size_t n, bool whole,
			      double deadline, size_t *got)
{
	*got = 0;
	for (;;) {
		if (idx >= f->nchunks)
			return f->dead;
		uint64_t clen = reader_chunk_len(r, f, idx);
		if (in >= clen)
			return f->dead;
		size_t want = n < clen - in ? n : (size_t)(clen - in);
		struct chunk *c;
		int e = make_ready_locked(r, f, idx, deadline, whole, &c);
		if (e < 0)
			return e;
		if (e == 0) {
			memcpy(dst, c->buf->data + in, want);
			used_locked(r, c, in + want == clen);
			*got = want;
			return 0;
		}
		pthread_mutex_unlock(&r->lock);
		e = content_read(r->store, f->item_id, f->version, idx,
				 (size_t)in, dst, want);
		pthread_mutex_lock(&r->lock);
		if (!e) {
			atomic_fetch_add(&r->cache_hits, 1);
			*got = want;
			return 0;
		}
		if (e != -ENOENT && e != -EUCLEAN)
			log_debug("content cache: reading item %s: %s; "
				  "downloading instead",
				  f->item_id, strerror(-e));
		/* Evicted, damaged or unreadable: fetch, unless someone else
		 * acted meanwhile. */
		if (c->state == CH_STORED) {
			c->state = CH_UNKNOWN;
			c->stored = false;
		}
	}
}

/* Whether a read at off continues a sequential reader's stream. */
static bool sequential(const struct reader_handle *h, uint64_t off)
{
	return off % h->r->chunk == 0 || h->window > 0 || off == h->next_off;
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
		err = chunk_bytes_locked(r, f, idx, in, buf + done, n,
					 sequential(h, at), deadline, &got);
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
		readahead_locked(h, off, done);
out:
	pthread_mutex_unlock(&r->lock);
	/* A short read would tell the kernel the file ends here: an error
	 * is the honest answer. */
	return err ? reader_errno(err) : (ssize_t)done;
}

void reader_view_release(struct reader_view *v)
{
	for (int i = 0; i < v->n; i++)
		chunk_buf_unref(v->hold[i]);
	v->n = 0;
}

ssize_t reader_read_view(struct reader_handle *h, size_t size, uint64_t off,
			 struct reader_view *v)
{
	struct reader *r = h->r;
	struct rfile *f = h->f;
	double deadline = reader_now() + r->read_timeout;
	size_t done = 0;
	int err = 0;

	memset(v, 0, sizeof(*v));
	pthread_mutex_lock(&r->lock);
	if (f->dead) {
		err = f->dead;
		goto out;
	}
	if (off >= f->size)
		goto out;
	if (!sequential(h, off)) {
		err = -EAGAIN; /* a piece straight from the store costs less */
		goto out;
	}
	if (size > f->size - off)
		size = (size_t)(f->size - off);
	while (done < size) {
		uint64_t at = off + done;
		uint64_t idx = at / r->chunk, in = at % r->chunk;
		uint64_t clen = reader_chunk_len(r, f, idx);
		struct chunk *c;
		if (v->n == READER_VIEW_MAX) {
			err = -EAGAIN;
			break;
		}
		if (in >= clen)
			break;
		err = make_ready_locked(r, f, idx, deadline, true, &c);
		if (err)
			break;
		size_t want =
		    size - done < clen - in ? size - done : (size_t)(clen - in);
		v->data[v->n] = c->buf->data + in;
		v->len[v->n] = want;
		v->hold[v->n] = chunk_buf_ref(c->buf);
		v->n++;
		used_locked(r, c, in + want == clen);
		done += want;
	}
	if (err == -ETIMEDOUT) {
		atomic_fetch_add(&r->timeouts, 1);
		log_warn("item %s: no bytes at %llu within read_timeout "
			 "(%.0f s)",
			 f->item_id, (unsigned long long)off, r->read_timeout);
	}
	if (!err && done)
		readahead_locked(h, off, done);
out:
	pthread_mutex_unlock(&r->lock);
	if (err) {
		reader_view_release(v);
		return err == -EAGAIN ? err : reader_errno(err);
	}
	return (ssize_t)done;
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
	/* Two idle buffers: more lifted one reader past 64 MiB of RSS. */
	r->budget = budget_new((size_t)r->chunk, 2);
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
	readahead_stream_locked(h, false);
	f->opens--;
	rfile_maybe_idle_locked(r, f);
	resident_trim_locked(r);
	pthread_mutex_unlock(&r->lock);
	free(h);
}

void reader_forget(struct reader *r, const char *item_id, const char *keep)
{
	url_cache_drop(r->urls, item_id);
	pthread_mutex_lock(&r->lock);
	/* A version a reader still has open keeps its chunks: it reads the
	 * version it opened. */
	if (!rfile_forget_locked(r, item_id, keep) && r->sq)
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
