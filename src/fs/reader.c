/* SPDX-License-Identifier: MIT */
/*
 * The read path. Design:
 *  - struct rfile is one file version, shared by every open of it; its
 *    chunk table says, per chunk, where the bytes are (store, memory) or who
 *    is fetching them. Exactly one thread fetches a chunk (state FETCHING);
 *    everyone else waits on r->cond. That is the single flight.
 *  - a fetch streams one chunk into a buffer, hashing as bytes arrive (each
 *    chunk's quickXorHash fold, at its file offset), resumes with Range after
 *    resets and short bodies, gets a fresh URL after 401/403, and hands the
 *    chunk to the store whole (a chunk is never stored partially).
 *  - when every chunk of a version has a fold, the folds are XORed into the
 *    file's hash and compared with SharePoint's: no second pass over data.
 *  - the first response of a version fixes its size (served length wins);
 *    a later response that disagrees, or carries another ETag, means the
 *    server now has other bytes: the version is dead and reads fail (EIO).
 *  - read-ahead: per handle, sequential reads grow a window of chunks that
 *    workers fetch in parallel; random reads fetch only what they touch.
 * Locks: r->lock guards every rfile, the job queue, the URL map and memory
 * accounting; it is released around network I/O and store reads. Lock
 * order: r->lock, then the store's lock. Never calls into fs.
 */
#include "config.h"

#include "fs/reader.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/qxh.h"
#include "cache/content.h"
#include "graph/graph.h"
#include "graph/item.h"

#define URL_BUCKETS	 1024
#define URL_MAX		 65536
#define URL_TTL		 (50 * 60.0) /* SharePoint's URLs live about 1 h */
#define MAX_ATTEMPTS	 100 /* a bound on the loop; read_timeout rules */
#define POOL_MAX	 1
#define MAX_URL_REFRESH	 3
#define FAILED_HOLD	 2.0 /* seconds a failed chunk answers its error */
#define MAX_IDLE_RFILES	 1024
#define CHUNK_DONE_ERROR (-ECANCELED) /* sink: "have what I need" */

enum chunk_state {
	CH_UNKNOWN,  /* maybe in the store, maybe not */
	CH_STORED,   /* in the store (unless evicted since) */
	CH_QUEUED,   /* not stored; waiting for a read-ahead worker */
	CH_FETCHING, /* one thread is downloading it */
	CH_READY,    /* in memory (and in the store when `stored`) */
	CH_FAILED,   /* the last fetch failed with err, at failed_at */
};

struct chunk {
	unsigned char state;
	int err;
	double failed_at;
	char *data; /* CH_READY */
	size_t len;
	size_t cap;	     /* of data: r->chunk when it came from the pool */
	bool stored;	     /* CH_READY: the store has it too */
	uint64_t used;	     /* LRU stamp of memory chunks; 0 once consumed */
	unsigned char *fold; /* CONTENT_FOLD_LEN bytes once fetched */
};

struct rfile {
	struct rfile *next;
	char *item_id, *version, *qxh;
	uint64_t size;
	bool size_confirmed;
	bool size_changed;
	uint64_t nchunks;
	struct chunk *chunks;
	unsigned opens, jobs;
	int dead;   /* -ESTALE once the server has other bytes */
	int verify; /* 0 pending, 1 verified, 2 mismatch accepted */
	int mismatches;
	char *url;
	double url_at;
	bool url_suspect; /* 401/403 seen: ask Graph (checks the version) */
	char *etag;	  /* of the first response that had one */
	uint64_t idle_since;
};

struct job {
	struct rfile *f;
	uint64_t idx;
	bool prefetch;	/* wanted before any open: not dropped when unopened */
	uint64_t bytes; /* counted in r->jobs_bytes until done */
	struct job *next;
};

struct url_entry {
	struct url_entry *next;
	char *item_id, *url;
	double at;
};

struct reader {
	struct graph *g;
	struct content *store;
	char *drive_id;
	uint64_t chunk, small, ra_chunks, mem_budget;
	unsigned nworkers;
	double read_timeout; /* seconds a chunk may take, retries included */

	pthread_mutex_t lock;
	pthread_cond_t cond;	 /* chunk states changed */
	pthread_cond_t job_cond; /* jobs queued, or stop */
	pthread_cond_t jan_cond; /* the janitor has work, or stop */
	struct rfile *files;
	size_t nidle;
	struct job *jq_head, *jq_tail;
	struct url_entry *urls[URL_BUCKETS];
	size_t nurls;
	uint64_t mem_bytes, clock, idle_clock;
	bool stop, evict_wanted, store_warned;
	pthread_t *workers;
	unsigned nstarted;
	pthread_t janitor;
	bool janitor_running;

	/* Chunk-sized buffers kept for reuse: a fresh MiB-sized malloc is an
	 * mmap whose every page faults and is zeroed on first touch. */
	pthread_mutex_t pool_lock;
	char *pool[POOL_MAX];
	unsigned npool;
	uint64_t jobs_bytes; /* expected bytes of queued and running jobs */

	atomic_uint_fast64_t downloads, download_bytes, download_retries,
	    url_refreshes, cache_hits, cache_misses, chunks_stored,
	    readahead_chunks, hash_verified, hash_mismatches, size_corrections,
	    store_errors, prefetched_files;
};

struct reader_handle {
	struct reader *r;
	struct rfile *f;
	uint64_t next_off; /* where a sequential reader reads next */
	uint64_t window;   /* read-ahead chunks; 0 = random access */
	uint64_t ahead;	   /* chunks below this were considered already */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A chunk-sized buffer (r->chunk bytes), from the pool when it has one. */
static char *buf_get(struct reader *r)
{
	char *p = NULL;

	pthread_mutex_lock(&r->pool_lock);
	if (r->npool)
		p = r->pool[--r->npool];
	pthread_mutex_unlock(&r->pool_lock);
	if (!p)
		p = malloc(r->chunk ? r->chunk : 1);
	return p;
}

static void buf_put(struct reader *r, char *p, size_t cap)
{
	if (p && cap == r->chunk) {
		pthread_mutex_lock(&r->pool_lock);
		if (r->npool < POOL_MAX) {
			r->pool[r->npool++] = p;
			p = NULL;
		}
		pthread_mutex_unlock(&r->pool_lock);
	}
	free(p);
}

/* Far beyond SharePoint's largest file (250 GB). A larger size is the
 * service's mistake; its chunk table alone would not fit in memory. */
#define MAX_FILE_SIZE (1ULL << 45)

static uint64_t nchunks_for(const struct reader *r, uint64_t size)
{
	/* An empty file still has chunk 0: fetching it tells the size. */
	return size ? (size + r->chunk - 1) / r->chunk : 1;
}

/* Bytes chunk idx holds at the version's current size. */
static uint64_t chunk_len(const struct reader *r, const struct rfile *f,
			  uint64_t idx)
{
	uint64_t start = idx * r->chunk;

	if (start >= f->size)
		return 0;
	return f->size - start < r->chunk ? f->size - start : r->chunk;
}

static uint64_t hash_bucket(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h % URL_BUCKETS;
}

/* ---- memory chunks ------------------------------------------------------ */

static void chunk_forget_data(struct reader *r, struct chunk *c)
{
	if (c->data) {
		r->mem_bytes -= c->len;
		buf_put(r, c->data, c->cap);
		c->data = NULL;
	}
	c->len = 0;
}

/* Keeps memory chunks within limit bytes, consumed and then least recently
 * used first. A chunk dropped here is fetched again if someone reads it
 * (cache=off). */
static void trim_memory_to_locked(struct reader *r, uint64_t limit)
{
	while (r->mem_bytes > limit) {
		struct chunk *victim = NULL;
		for (struct rfile *f = r->files; f; f = f->next)
			for (uint64_t i = 0; i < f->nchunks; i++) {
				struct chunk *c = &f->chunks[i];
				if (c->state == CH_READY &&
				    (!victim || c->used < victim->used))
					victim = c;
			}
		if (!victim)
			return;
		chunk_forget_data(r, victim);
		victim->state = victim->stored ? CH_STORED : CH_UNKNOWN;
	}
}

static void trim_memory_locked(struct reader *r)
{
	trim_memory_to_locked(r, r->mem_budget);
}

/* Frees the memory chunks that readers have read to their end. */
static void drop_consumed_locked(struct reader *r)
{
	for (struct rfile *f = r->files; f; f = f->next)
		for (uint64_t i = 0; i < f->nchunks; i++) {
			struct chunk *c = &f->chunks[i];
			if (c->state == CH_READY && c->used == 0) {
				chunk_forget_data(r, c);
				c->state = c->stored ? CH_STORED : CH_UNKNOWN;
			}
		}
}

/* ---- rfiles ---------------------------------------------------------------
 */

static void rfile_free(struct reader *r, struct rfile *f)
{
	for (uint64_t i = 0; f->chunks && i < f->nchunks; i++) {
		chunk_forget_data(r, &f->chunks[i]);
		free(f->chunks[i].fold);
	}
	free(f->chunks);
	free(f->item_id);
	free(f->version);
	free(f->qxh);
	free(f->url);
	free(f->etag);
	free(f);
}

/* New size: the chunk table follows. Only before the size is confirmed,
 * when nobody but the confirming fetch touches chunks beyond 0. */
static int rfile_resize_locked(struct reader *r, struct rfile *f, uint64_t size)
{
	uint64_t n = nchunks_for(r, size);

	if (size > MAX_FILE_SIZE)
		return -EFBIG;
	if (n != f->nchunks) {
		for (uint64_t i = n; i < f->nchunks; i++) {
			chunk_forget_data(r, &f->chunks[i]);
			free(f->chunks[i].fold);
		}
		struct chunk *c = realloc(f->chunks, n * sizeof(*c));
		if (!c)
			return -ENOMEM;
		for (uint64_t i = f->nchunks; i < n; i++)
			memset(&c[i], 0, sizeof(c[i]));
		f->chunks = c;
		f->nchunks = n;
	}
	f->size = size;
	return 0;
}

static struct rfile *rfile_find_locked(struct reader *r, const char *item_id,
				       const char *version)
{
	for (struct rfile *f = r->files; f; f = f->next)
		if (strcmp(f->item_id, item_id) == 0 &&
		    strcmp(f->version, version) == 0)
			return f;
	return NULL;
}

/* Frees the longest idle rfiles beyond MAX_IDLE_RFILES. */
static void reap_idle_locked(struct reader *r)
{
	while (r->nidle > MAX_IDLE_RFILES) {
		struct rfile **victim = NULL;
		for (struct rfile **pp = &r->files; *pp; pp = &(*pp)->next)
			if (!(*pp)->opens && !(*pp)->jobs &&
			    (!victim ||
			     (*pp)->idle_since < (*victim)->idle_since))
				victim = pp;
		if (!victim)
			return;
		struct rfile *f = *victim;
		*victim = f->next;
		rfile_free(r, f);
		r->nidle--;
	}
}

static void rfile_unref_job_locked(struct reader *r, struct rfile *f)
{
	f->jobs--;
	if (!f->opens && !f->jobs) {
		f->idle_since = ++r->idle_clock;
		r->nidle++;
		reap_idle_locked(r);
	}
}

static void store_file_row(struct reader *r, struct rfile *f)
{
	if (!r->store)
		return;
	struct content_file row = {.size = f->size,
				   .verified = f->verify == 1,
				   .mismatches = f->mismatches};
	content_file_set(r->store, f->item_id, f->version, &row);
}

/* ---- download URLs ------------------------------------------------------ */

void reader_note_url(struct reader *r, const char *item_id, const char *url)
{
	if (!url || !item_id)
		return;
	pthread_mutex_lock(&r->lock);
	uint64_t b = hash_bucket(item_id);
	struct url_entry *e = r->urls[b];
	while (e && strcmp(e->item_id, item_id) != 0)
		e = e->next;
	if (!e) {
		if (r->nurls >= URL_MAX)
			goto out; /* a fetch asks Graph instead */
		e = calloc(1, sizeof(*e));
		if (!e || !(e->item_id = strdup(item_id))) {
			free(e);
			goto out;
		}
		e->next = r->urls[b];
		r->urls[b] = e;
		r->nurls++;
	}
	char *copy = strdup(url);
	if (copy) {
		free(e->url);
		e->url = copy;
		e->at = now_s();
	}
out:
	pthread_mutex_unlock(&r->lock);
}

static void url_drop_locked(struct reader *r, const char *item_id)
{
	for (struct url_entry **pp = &r->urls[hash_bucket(item_id)]; *pp;
	     pp = &(*pp)->next) {
		if (strcmp((*pp)->item_id, item_id) == 0) {
			struct url_entry *e = *pp;
			*pp = e->next;
			free(e->item_id);
			free(e->url);
			free(e);
			r->nurls--;
			return;
		}
	}
}

/* Asks Graph for the item: checks it is still the version being read and
 * takes its download URL (or the /content redirect when it has none). */
static int url_from_graph(struct reader *r, struct rfile *f, bool check,
			  char **url)
{
	struct graph_item gi;
	int err;

	atomic_fetch_add(&r->url_refreshes, 1);
	if (!check)
		return graph_content_location(r->g, r->drive_id, f->item_id,
					      url);
	err = graph_item_get(r->g, r->drive_id, f->item_id, &gi);
	if (err)
		return err;
	if ((!gi.ctag || strcmp(gi.ctag, f->version) != 0) &&
	    (!gi.etag || strcmp(gi.etag, f->version) != 0)) {
		log_warn("item %s changed on the server while open: reads of "
			 "the old version fail until it is opened again",
			 f->item_id);
		err = -ESTALE;
	} else if (gi.download_url) {
		*url = gi.download_url;
		gi.download_url = NULL;
	} else {
		err =
		    graph_content_location(r->g, r->drive_id, f->item_id, url);
	}
	graph_item_release(&gi);
	return err;
}

/* A usable download URL for f (malloc'd). */
static int current_url(struct reader *r, struct rfile *f, char **url)
{
	double now = now_s();
	bool suspect;

	*url = NULL;
	pthread_mutex_lock(&r->lock);
	suspect = f->url_suspect;
	if (!suspect && f->url && now - f->url_at < URL_TTL) {
		*url = strdup(f->url);
	} else if (!suspect) {
		struct url_entry *e = r->urls[hash_bucket(f->item_id)];
		while (e && strcmp(e->item_id, f->item_id) != 0)
			e = e->next;
		if (e && e->url && now - e->at < URL_TTL &&
		    (*url = strdup(e->url))) {
			free(f->url);
			f->url = strdup(e->url);
			f->url_at = e->at;
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (*url)
		return 0;

	char *fresh = NULL;
	int err = url_from_graph(r, f, suspect, &fresh);
	pthread_mutex_lock(&r->lock);
	if (!err) {
		free(f->url);
		f->url = strdup(fresh);
		f->url_at = now_s();
		f->url_suspect = false;
		url_drop_locked(r, f->item_id);
	} else if (err == -ESTALE) {
		f->dead = -ESTALE;
	}
	pthread_mutex_unlock(&r->lock);
	*url = fresh;
	return err;
}

/* ---- fetching one chunk ----------------------------------------------------
 */

struct stream {
	struct reader *r;
	struct rfile *f;
	uint64_t idx;
	uint64_t cstart, cend; /* the chunk's span; cend may move once */
	char *buf;
	uint64_t pos;  /* absolute offset of the next byte we need */
	uint64_t skip; /* bytes of this response before pos (a 200) */
	struct qxh h;  /* the chunk's fold, from cstart */
	struct http_response *resp;
	bool checked;
	bool stopped; /* the sink had all it needed and cut the body */
	int err;      /* why the sink stopped, besides CHUNK_DONE_ERROR */
};

/* The server says the version has total bytes: confirm, correct or
 * declare the version dead. */
static int size_seen_locked(struct stream *s, uint64_t total)
{
	struct reader *r = s->r;
	struct rfile *f = s->f;

	if (!f->size_confirmed) {
		if (total != f->size) {
			log_info("item %s: the server has %llu bytes where "
				 "the listing said %llu; using the served "
				 "size",
				 f->item_id, (unsigned long long)total,
				 (unsigned long long)f->size);
			int err = rfile_resize_locked(r, f, total);
			if (err)
				return err;
			f->size_changed = true;
			atomic_fetch_add(&r->size_corrections, 1);
		}
		f->size_confirmed = true;
		store_file_row(r, f);
	} else if (total != f->size) {
		log_warn("item %s changed on the server while open (%llu "
			 "bytes, was %llu): reads fail until it is opened "
			 "again",
			 f->item_id, (unsigned long long)total,
			 (unsigned long long)f->size);
		f->dead = -ESTALE;
		return -ESTALE;
	}
	uint64_t end = s->cstart + r->chunk;
	s->cend = end < f->size ? end : f->size;
	if (s->cend < s->cstart)
		s->cend = s->cstart;
	return 0;
}

/* First bytes (or end) of a 200/206: is this the range and version we
 * asked for? */
static int check_response(struct stream *s)
{
	struct http_response *resp = s->resp;
	long long first = 0, total = -1;
	int err = 0;

	s->checked = true;
	if (resp->status == 206) {
		if (graph_download_range(resp, &first, &total) != 0 ||
		    first != (long long)s->pos) {
			log_warn("item %s: unexpected Content-Range in a "
				 "ranged download; retrying",
				 s->f->item_id);
			return -EIO;
		}
		s->skip = 0;
	} else {
		/* A 200 where a range was asked: the whole file comes;
		 * skip to where we are. */
		s->skip = s->pos;
		total = resp->content_length;
	}
	pthread_mutex_lock(&s->r->lock);
	if (s->f->dead)
		err = s->f->dead;
	if (!err && resp->etag) {
		if (!s->f->etag)
			s->f->etag = strdup(resp->etag);
		else if (strcmp(s->f->etag, resp->etag) != 0) {
			log_warn("item %s changed on the server while open "
				 "(new ETag): reads fail until it is opened "
				 "again",
				 s->f->item_id);
			s->f->dead = err = -ESTALE;
		}
	}
	if (!err && total >= 0)
		err = size_seen_locked(s, (uint64_t)total);
	pthread_mutex_unlock(&s->r->lock);
	return err;
}

static int stream_body(void *ctx, const char *data, size_t len)
{
	struct stream *s = ctx;

	atomic_fetch_add(&s->r->download_bytes, len);
	if (!s->checked && (s->err = check_response(s)) != 0)
		return s->err;
	while (len > 0) {
		if (s->skip) {
			size_t d = len < s->skip ? len : (size_t)s->skip;
			s->skip -= d;
			data += d;
			len -= d;
			continue;
		}
		if (s->pos >= s->cend) {
			s->stopped = true;
			return CHUNK_DONE_ERROR;
		}
		size_t n = len;
		if (n > s->cend - s->pos)
			n = (size_t)(s->cend - s->pos);
		memcpy(s->buf + (s->pos - s->cstart), data, n);
		qxh_update(&s->h, data, n);
		s->pos += n;
		data += n;
		len -= n;
	}
	return 0;
}

/* Verifies a version once every chunk has its fold. Called after a chunk
 * was delivered. */
static void verify_locked(struct reader *r, struct rfile *f)
{
	unsigned char fold[CONTENT_FOLD_LEN];
	bool all_mem = true;

	if (f->verify != 0 || f->dead)
		return;
	if (!f->qxh) {
		f->verify = 1; /* nothing to check against */
		return;
	}
	for (uint64_t i = 0; i < f->nchunks; i++) {
		const struct chunk *c = &f->chunks[i];
		if (!c->fold) {
			all_mem = false;
			if (!(r->store &&
			      (c->state == CH_STORED ||
			       (c->state == CH_READY && c->stored))))
				return;
		}
	}
	struct qxh h;
	qxh_init(&h);
	if (all_mem) {
		for (uint64_t i = 0; i < f->nchunks; i++)
			qxh_merge(&h, f->chunks[i].fold);
	} else {
		if (content_fold(r->store, f->item_id, f->version, f->nchunks,
				 fold) != 0)
			return;
		qxh_merge(&h, fold);
	}
	h.length = f->size;
	char got[QXH_B64_LEN + 1];
	qxh_final_b64(&h, got);
	if (strcmp(got, f->qxh) == 0) {
		f->verify = 1;
		atomic_fetch_add(&r->hash_verified, 1);
		store_file_row(r, f);
		return;
	}
	f->mismatches++;
	atomic_fetch_add(&r->hash_mismatches, 1);
	if (f->mismatches == 1) {
		log_warn("item %s: the downloaded bytes do not match "
			 "SharePoint's quickXorHash; downloading once more",
			 f->item_id);
		if (r->store)
			content_drop_version(r->store, f->item_id, f->version);
		for (uint64_t i = 0; i < f->nchunks; i++) {
			struct chunk *c = &f->chunks[i];
			free(c->fold);
			c->fold = NULL;
			if (c->state == CH_STORED || c->state == CH_READY) {
				chunk_forget_data(r, c);
				c->state = CH_UNKNOWN;
				c->stored = false;
			}
		}
	} else {
		log_warn("item %s: the bytes differ from SharePoint's "
			 "quickXorHash again; serving them as downloaded "
			 "(SharePoint rewrites some Office files)",
			 f->item_id);
		f->verify = 2;
	}
	store_file_row(r, f);
}

/* Hands a fetched chunk to the store (or memory) and wakes its readers. */
static void deliver(struct reader *r, struct stream *s)
{
	struct rfile *f = s->f;
	size_t len = (size_t)(s->pos - s->cstart);
	int err = r->store ? content_put(r->store, f->item_id, f->version,
					 s->idx, s->buf, len, s->h.fold)
			   : -ENOSYS;

	pthread_mutex_lock(&r->lock);
	atomic_fetch_add(&r->cache_misses, 1);
	if (s->idx >= f->nchunks) { /* the file turned out shorter */
		buf_put(r, s->buf, r->chunk);
		goto out;
	}
	struct chunk *c = &f->chunks[s->idx];
	free(c->fold);
	c->fold = malloc(CONTENT_FOLD_LEN);
	if (c->fold)
		memcpy(c->fold, s->h.fold, CONTENT_FOLD_LEN);
	chunk_forget_data(r, c);
	/* The bytes stay in memory too: readers are about to want them, and
	 * reading them back from the store would cost a copy. */
	c->stored = !err;
	if (!err) {
		atomic_fetch_add(&r->chunks_stored, 1);
		r->evict_wanted = true;
		pthread_cond_signal(&r->jan_cond);
	} else if (r->store) {
		atomic_fetch_add(&r->store_errors, 1);
		if (!r->store_warned && err == -EFBIG)
			log_warn("content cache: its cap is smaller than one "
				 "chunk; serving from memory");
		else if (!r->store_warned)
			log_warn("content cache: cannot store (%s); serving "
				 "from memory",
				 strerror(-err));
		r->store_warned = true;
	}
	c->state = CH_READY;
	c->data = s->buf;
	c->cap = r->chunk;
	c->len = len;
	c->used = ++r->clock;
	r->mem_bytes += len;
	verify_locked(r, f);
	if (!f->opens && c->stored && c->state == CH_READY) {
		/* Prefetched, or its reader left: the store has it, so memory
		 * need not (and the budget stays free for readers). */
		chunk_forget_data(r, c);
		c->state = CH_STORED;
	}
	trim_memory_locked(r);
out:
	s->buf = NULL;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void fetch_failed(struct reader *r, struct rfile *f, uint64_t idx,
			 int err)
{
	pthread_mutex_lock(&r->lock);
	if (idx < f->nchunks) {
		struct chunk *c = &f->chunks[idx];
		c->state = CH_FAILED;
		c->err = err;
		c->failed_at = now_s();
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Sleeps s seconds, or until the deadline (now_s() time) if sooner. */
static void sleep_until(double s, double deadline)
{
	double left = deadline - now_s();

	if (left > 0)
		sleep_s(s < left ? s : left);
}

static double backoff(int attempt)
{
	double d = 0.1;

	for (int i = 1; i < attempt && d < 5; i++)
		d *= 2;
	return d > 5 ? 5 : d;
}

/*
 * Downloads chunk idx, whose state the caller set to CH_FETCHING. On
 * return the chunk is stored, in memory, or failed, and waiters are woken.
 * 0 or -errno (-ESTALE: the version changed; -ENOENT: gone).
 */
static int fetch_chunk(struct reader *r, struct rfile *f, uint64_t idx)
{
	struct stream s = {.r = r, .f = f, .idx = idx};
	struct http_response resp;
	int err = 0, refreshes = 0;
	bool whole;

	s.cstart = idx * r->chunk;
	pthread_mutex_lock(&r->lock);
	/* Until the size is confirmed, ask for the whole chunk: the listing
	 * may be short. */
	s.cend = f->size_confirmed ? s.cstart + chunk_len(r, f, idx)
				   : s.cstart + r->chunk;
	whole = idx == 0 && !f->size_confirmed && f->size <= r->small;
	pthread_mutex_unlock(&r->lock);
	s.buf = buf_get(r);
	if (!s.buf) {
		fetch_failed(r, f, idx, -ENOMEM);
		return -ENOMEM;
	}
	s.pos = s.cstart;
	qxh_init_at(&s.h, s.cstart);
	http_response_init(&resp);
	double deadline = now_s() + r->read_timeout;

	for (int attempt = 1;; attempt++) {
		char *url = NULL;
		if (attempt > 1 && now_s() >= deadline) {
			/* read_timeout: the application gets EIO rather than
			 * waiting on a service that does not come back. */
			log_warn("item %s: no download within read_timeout "
				 "(%.0f s, %d attempts): %s",
				 f->item_id, r->read_timeout, attempt - 1,
				 err ? strerror(-err) : "service errors");
			err = -ETIMEDOUT;
			break;
		}
		if (attempt > MAX_ATTEMPTS) {
			/* Say why: the last attempt's error or status. */
			if (err)
				log_warn("item %s: download failed after %d "
					 "attempts: %s",
					 f->item_id, MAX_ATTEMPTS,
					 strerror(-err));
			else
				log_warn("item %s: download failed after %d "
					 "attempts: HTTP %ld",
					 f->item_id, MAX_ATTEMPTS, resp.status);
			err = err ? err : -EIO;
			break;
		}
		if (attempt > 1)
			atomic_fetch_add(&r->download_retries, 1);
		err = current_url(r, f, &url);
		if (err) {
			free(url);
			if (err == -ESTALE || err == -ENOENT ||
			    err == -EACCES || attempt >= MAX_ATTEMPTS)
				break;
			sleep_until(backoff(attempt), deadline);
			continue;
		}
		uint64_t off = s.pos, len = s.cend - s.pos;
		if (whole && s.pos == 0)
			len = 0; /* no Range header: the whole file */
		s.resp = &resp;
		s.checked = false;
		s.stopped = false;
		s.err = 0;
		s.skip = 0;
		atomic_fetch_add(&r->downloads, 1);
		err =
		    graph_download(r->g, url, off, len, stream_body, &s, &resp);
		free(url);
		if (err == CHUNK_DONE_ERROR)
			err = 0;
		if (!err && !s.checked &&
		    (resp.status == 200 || resp.status == 206))
			err = check_response(&s); /* an empty body */
		if (err == -ESTALE || s.err == -ESTALE) {
			err = -ESTALE;
			break;
		}
		if (!err && resp.status == 200 && resp.content_length < 0 &&
		    s.skip == 0 && !s.stopped) {
			/* A whole body without a length ended: that is the
			 * file's end. */
			pthread_mutex_lock(&r->lock);
			err = size_seen_locked(&s, s.pos);
			pthread_mutex_unlock(&r->lock);
			if (err)
				break;
		}
		if (!err && (resp.status == 200 || resp.status == 206)) {
			if (s.pos >= s.cend)
				break; /* done */
			/* A short body without a transport error: resume. */
			log_debug("item %s: short download, resuming at %llu",
				  f->item_id, (unsigned long long)s.pos);
			continue;
		}
		if (!err && resp.status == 416) {
			long long first, total;
			if (graph_download_range(&resp, &first, &total) == 0 &&
			    total >= 0) {
				pthread_mutex_lock(&r->lock);
				err = size_seen_locked(&s, (uint64_t)total);
				pthread_mutex_unlock(&r->lock);
				if (!err && s.pos >= s.cend)
					break; /* past the end: empty */
			}
			err = err ? err : -EIO;
			break;
		}
		if (!err && (resp.status == 401 || resp.status == 403 ||
			     resp.status == 410)) {
			/* The URL expired or was revoked: ask Graph again
			 * (which also tells whether the version moved on). */
			if (++refreshes > MAX_URL_REFRESH) {
				log_warn("item %s: download refused (HTTP %ld) "
					 "with fresh URLs too",
					 f->item_id, resp.status);
				err = -EACCES;
				break;
			}
			log_debug("item %s: download URL refused (HTTP %ld); "
				  "getting a fresh one",
				  f->item_id, resp.status);
			pthread_mutex_lock(&r->lock);
			f->url_suspect = true;
			pthread_mutex_unlock(&r->lock);
			attempt--;
			continue;
		}
		if (!err && resp.status == 404) {
			log_warn("item %s: the file no longer exists on the "
				 "server",
				 f->item_id);
			err = -ENOENT;
			break;
		}
		if (!err && (resp.status == 429 || resp.status == 503))
			continue; /* graph_download closed the gate */
		if (!err && resp.status >= 500) {
			err = -EIO;
			sleep_until(backoff(attempt), deadline);
			continue;
		}
		if (!err) {
			log_warn("item %s: download answered HTTP %ld",
				 f->item_id, resp.status);
			err = -EIO;
			break;
		}
		if (http_error_is_transient(err) || err == -EPROTO) {
			log_debug("item %s: download interrupted (%s); "
				  "resuming at %llu",
				  f->item_id, resp.error,
				  (unsigned long long)s.pos);
			sleep_until(backoff(attempt) / 2, deadline);
			continue;
		}
		break;
	}
	http_response_release(&resp);
	if (!err) {
		deliver(r, &s);
		return 0;
	}
	buf_put(r, s.buf, r->chunk);
	fetch_failed(r, f, idx, err);
	return err;
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

/* Loads a stored chunk into memory whole (one pass over its blob) so a
 * sequential reader's next pieces are memory copies. r->lock held; 0 when
 * the chunk is READY now, -ENOENT when the store does not have it. */
static int load_chunk_locked(struct reader *r, struct rfile *f, uint64_t idx,
			     uint64_t clen)
{
	/* Small files' chunks get a buffer their size, the rest the pool's. */
	size_t cap = clen > r->chunk / 2 ? r->chunk : (clen ? clen : 1);
	char *buf = cap == r->chunk ? buf_get(r) : malloc(cap);
	size_t m = 0;

	if (!buf)
		return -ENOMEM;
	pthread_mutex_unlock(&r->lock);
	int e = content_read(r->store, f->item_id, f->version, idx, 0, buf,
			     clen, &m);
	pthread_mutex_lock(&r->lock);
	if (!e && m != clen)
		e = -ENOENT; /* shorter than the version says: not this one */
	if (e || idx >= f->nchunks) {
		buf_put(r, buf, cap);
		return e ? e : -ENOENT;
	}
	struct chunk *c = &f->chunks[idx];
	if (c->state != CH_STORED && c->state != CH_UNKNOWN) {
		buf_put(r, buf, cap); /* someone else acted meanwhile */
		return 0;
	}
	c->state = CH_READY;
	c->stored = true;
	c->data = buf;
	c->cap = cap;
	c->len = clen;
	c->used = ++r->clock;
	r->mem_bytes += clen;
	atomic_fetch_add(&r->cache_hits, 1);
	trim_memory_locked(r);
	return 0;
}

/* A random reader's piece straight from the store, without loading the
 * whole chunk. r->lock held; 0, or -ENOENT when the store cannot give all
 * of it. */
static int piece_from_store_locked(struct reader *r, struct rfile *f,
				   uint64_t idx, uint64_t in, char *dst,
				   size_t want, size_t *got)
{
	size_t m = 0;

	pthread_mutex_unlock(&r->lock);
	int e = content_read(r->store, f->item_id, f->version, idx, in, dst,
			     want, &m);
	pthread_mutex_lock(&r->lock);
	if (e)
		return e;
	if (m != want)
		return -ENOENT;
	atomic_fetch_add(&r->cache_hits, 1);
	if (idx < f->nchunks && f->chunks[idx].state == CH_UNKNOWN)
		f->chunks[idx].state = CH_STORED;
	*got = m;
	return 0;
}

/* Copies up to n bytes at offset in of chunk idx into dst; *got receives
 * the count. r->lock held on entry and exit. */
static int chunk_bytes_locked(struct reader *r, struct rfile *f, uint64_t idx,
			      uint64_t in, char *dst, size_t n, bool whole,
			      size_t *got)
{
	*got = 0;
	for (;;) {
		if (f->dead)
			return f->dead;
		if (idx >= f->nchunks)
			return 0;
		struct chunk *c = &f->chunks[idx];
		uint64_t clen = chunk_len(r, f, idx);
		if (in >= clen)
			return 0;
		size_t want = n < clen - in ? n : (size_t)(clen - in);

		switch (c->state) {
		case CH_READY:
			if (c->len < clen) { /* cannot happen; never serve it */
				chunk_forget_data(r, c);
				c->state = CH_UNKNOWN;
				continue;
			}
			memcpy(dst, c->data + in, want);
			/* Read to its end: a sequential reader is done with it,
			 * so it goes first when memory is short. */
			c->used = in + want == clen ? 0 : ++r->clock;
			*got = want;
			return 0;
		case CH_FETCHING:
			pthread_cond_wait(&r->cond, &r->lock);
			continue;
		case CH_FAILED:
			if (now_s() - c->failed_at < FAILED_HOLD)
				return c->err;
			c->state = CH_UNKNOWN;
			continue;
		case CH_STORED:
		case CH_UNKNOWN:
			if (r->store) {
				int e;
				if (whole) {
					e = load_chunk_locked(r, f, idx, clen);
					if (!e)
						continue;
				} else {
					e = piece_from_store_locked(
					    r, f, idx, in, dst, want, got);
					if (!e)
						return 0;
				}
				if (e != -ENOENT)
					log_warn("content cache: reading item "
						 "%s: %s; downloading instead",
						 f->item_id, strerror(-e));
				/* Evicted, short or unreadable: fetch, unless
				 * someone else acted meanwhile. */
				if (idx >= f->nchunks)
					continue;
				c = &f->chunks[idx];
				if (c->state != CH_STORED &&
				    c->state != CH_UNKNOWN)
					continue;
			}
			/* fall through */
		case CH_QUEUED:
		default: {
			c->state = CH_FETCHING;
			pthread_mutex_unlock(&r->lock);
			int e = fetch_chunk(r, f, idx);
			pthread_mutex_lock(&r->lock);
			if (e)
				return e;
			continue;
		}
		}
	}
}

/* What a job for chunk idx will bring in: its length at the size known
 * now (a page at least). */
static uint64_t job_bytes(const struct reader *r, const struct rfile *f,
			  uint64_t idx)
{
	uint64_t n = chunk_len(r, f, idx);

	return n < 4096 ? 4096 : n;
}

/* Memory in use or promised stays within the budget: read-ahead and
 * prefetch wait for readers to catch up instead. */
static bool room_for_job_locked(struct reader *r, uint64_t need)
{
	if (r->mem_bytes + r->jobs_bytes + need > r->mem_budget)
		drop_consumed_locked(r); /* never unread read-ahead */
	return r->mem_bytes + r->jobs_bytes + need <= r->mem_budget;
}

/* Queues chunk idx of f (UNKNOWN or FAILED) for a worker. */
static bool queue_job_locked(struct reader *r, struct rfile *f, uint64_t idx,
			     bool prefetch)
{
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return false;
	j->f = f;
	j->idx = idx;
	j->prefetch = prefetch;
	j->bytes = job_bytes(r, f, idx);
	j->next = NULL;
	if (r->jq_tail)
		r->jq_tail->next = j;
	else
		r->jq_head = j;
	r->jq_tail = j;
	if (!f->opens && !f->jobs)
		r->nidle--; /* busy now: not reaped */
	f->jobs++;
	r->jobs_bytes += j->bytes;
	f->chunks[idx].state = CH_QUEUED;
	pthread_cond_signal(&r->job_cond);
	return true;
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
	if (h->window > r->ra_chunks)
		h->window = r->ra_chunks;
	if (!sequential || off + size > h->next_off)
		h->next_off = off + size;
	if (!h->window || !r->nstarted || f->dead)
		return;
	uint64_t last = (off + size - 1) / r->chunk;
	uint64_t from = last + 1 > h->ahead ? last + 1 : h->ahead;
	uint64_t to = last + h->window;
	if (to >= f->nchunks)
		to = f->nchunks - 1;
	for (uint64_t i = from; i <= to && i < f->nchunks; i++) {
		struct chunk *c = &f->chunks[i];
		if (c->state != CH_UNKNOWN && c->state != CH_FAILED)
			continue;
		if (!room_for_job_locked(r, job_bytes(r, f, i))) {
			to = i - 1;
			break;
		}
		if (r->store &&
		    content_has(r->store, f->item_id, f->version, i)) {
			c->state = CH_STORED;
			continue;
		}
		if (!queue_job_locked(r, f, i, false))
			break;
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
		/* Sequential pieces: load the chunk whole once. Random ones:
		 * read just the piece. */
		bool whole = in == 0 || h->window > 0 || at == h->next_off;
		err = chunk_bytes_locked(r, f, idx, in, buf + done, n, whole,
					 &got);
		if (err || !got)
			break;
		done += got;
	}
	if (!err && done)
		read_ahead_locked(h, off, done);
out:
	pthread_mutex_unlock(&r->lock);
	/* A short read would tell the kernel the file ends here: an error
	 * is the honest answer. */
	return err ? reader_errno(err) : (ssize_t)done;
}

/* ---- workers and janitor ------------------------------------------------ */

static void *worker_main(void *arg)
{
	struct reader *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		struct job *j = r->jq_head;
		if (!j) {
			pthread_cond_wait(&r->job_cond, &r->lock);
			continue;
		}
		r->jq_head = j->next;
		if (!r->jq_head)
			r->jq_tail = NULL;
		struct rfile *f = j->f;
		uint64_t idx = j->idx, bytes = j->bytes;
		bool prefetch = j->prefetch;
		free(j);
		if (idx >= f->nchunks || f->chunks[idx].state != CH_QUEUED) {
			r->jobs_bytes -= bytes;
			rfile_unref_job_locked(r, f);
			continue;
		}
		if ((!f->opens && !prefetch) || f->dead) {
			/* Read-ahead whose reader has gone: nobody waits. */
			f->chunks[idx].state = CH_UNKNOWN;
			r->jobs_bytes -= bytes;
			rfile_unref_job_locked(r, f);
			continue;
		}
		f->chunks[idx].state = CH_FETCHING;
		pthread_mutex_unlock(&r->lock);
		fetch_chunk(r, f, idx);
		pthread_mutex_lock(&r->lock);
		r->jobs_bytes -= bytes;
		rfile_unref_job_locked(r, f);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void *janitor_main(void *arg)
{
	struct reader *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		if (!r->evict_wanted) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 10;
			pthread_cond_timedwait(&r->jan_cond, &r->lock, &until);
			continue;
		}
		r->evict_wanted = false;
		pthread_mutex_unlock(&r->lock);
		long n = content_evict(r->store);
		if (n < 0)
			log_warn("content cache: eviction failed: %s",
				 strerror((int)-n));
		else if (n > 0)
			log_debug("content cache: evicted %ld chunks", n);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int reader_start(struct reader *r)
{
	int rc = 0;

	if (r->workers)
		return 0;
	r->workers = calloc(r->nworkers, sizeof(*r->workers));
	if (!r->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < r->nworkers && r->ra_chunks; i++) {
		rc = pthread_create(&r->workers[i], NULL, worker_main, r);
		if (rc)
			break;
		r->nstarted++;
	}
	if (!rc && r->store) {
		rc = pthread_create(&r->janitor, NULL, janitor_main, r);
		r->janitor_running = rc == 0;
	}
	return -rc;
}

/* ---- lifecycle ------------------------------------------------------------
 */

struct reader *reader_new(struct graph *g, struct content *store,
			  const char *drive_id, const struct reader_config *cfg,
			  int *err)
{
	struct reader *r = calloc(1, sizeof(*r));

	if (!r || !(r->drive_id = strdup(drive_id))) {
		free(r);
		*err = -ENOMEM;
		return NULL;
	}
	r->g = g;
	r->store = store;
	r->chunk = cfg->chunk_size ? cfg->chunk_size : 4u << 20;
	r->small = cfg->small_file < r->chunk ? cfg->small_file : r->chunk;
	r->ra_chunks = (cfg->readahead + r->chunk - 1) / r->chunk;
	r->nworkers = cfg->workers ? cfg->workers : 4;
	r->read_timeout = cfg->read_timeout > 0 ? cfg->read_timeout : 60;
	/* Chunks kept in memory: what read-ahead keeps ahead of a reader plus
	 * what workers deliver, within a fixed bound (RSS must not follow the
	 * file size). */
	r->mem_budget = (r->ra_chunks + r->nworkers + 2) * r->chunk;
	uint64_t cap = 3 * r->chunk > (24u << 20) ? 3 * r->chunk : 24u << 20;
	if (r->mem_budget > cap)
		r->mem_budget = cap;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->pool_lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	pthread_cond_init(&r->job_cond, NULL);
	pthread_cond_init(&r->jan_cond, NULL);
	*err = 0;
	return r;
}

void reader_free(struct reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->job_cond);
	pthread_cond_broadcast(&r->jan_cond);
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < r->nstarted; i++)
		pthread_join(r->workers[i], NULL);
	if (r->janitor_running)
		pthread_join(r->janitor, NULL);
	free(r->workers);
	while (r->jq_head) {
		struct job *j = r->jq_head;
		r->jq_head = j->next;
		free(j);
	}
	while (r->files) {
		struct rfile *f = r->files;
		r->files = f->next;
		rfile_free(r, f);
	}
	for (size_t b = 0; b < URL_BUCKETS; b++)
		while (r->urls[b]) {
			struct url_entry *e = r->urls[b];
			r->urls[b] = e->next;
			free(e->item_id);
			free(e->url);
			free(e);
		}
	pthread_mutex_destroy(&r->lock);
	for (unsigned i = 0; i < r->npool; i++)
		free(r->pool[i]);
	pthread_mutex_destroy(&r->pool_lock);
	pthread_cond_destroy(&r->cond);
	pthread_cond_destroy(&r->job_cond);
	pthread_cond_destroy(&r->jan_cond);
	free(r->drive_id);
	free(r);
}

static struct rfile *rfile_new_locked(struct reader *r,
				      const struct reader_file *in)
{
	struct rfile *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->item_id = strdup(in->item_id);
	f->version = strdup(in->version);
	f->qxh = in->quickxorhash ? strdup(in->quickxorhash) : NULL;
	f->size = in->size;
	if (!f->item_id || !f->version || (in->quickxorhash && !f->qxh))
		goto fail;
	if (r->store) {
		struct content_file row;
		if (content_file_get(r->store, f->item_id, f->version, &row) ==
		    0) {
			f->size = row.size;
			f->size_confirmed = true;
			f->mismatches = row.mismatches;
			f->verify = row.verified	  ? 1
				    : row.mismatches >= 2 ? 2
							  : 0;
		} else {
			/* A new version: older ones are of no more use. */
			bool old_open = false;
			for (struct rfile *o = r->files; o; o = o->next)
				if (strcmp(o->item_id, f->item_id) == 0 &&
				    (o->opens || o->jobs))
					old_open = true;
			if (!old_open)
				content_drop_item(r->store, f->item_id,
						  f->version);
		}
	}
	if (f->size > MAX_FILE_SIZE)
		goto fail;
	f->nchunks = nchunks_for(r, f->size);
	f->chunks = calloc(f->nchunks, sizeof(*f->chunks));
	if (!f->chunks)
		goto fail;
	f->next = r->files;
	r->files = f;
	f->idle_since = ++r->idle_clock;
	r->nidle++; /* until reader_open counts its open */
	return f;
fail:
	rfile_free(r, f);
	return NULL;
}

/* Fetches chunk 0 of a version whose size is not known yet: its response
 * carries the size (and the first read wants those bytes anyway). */
static int confirm_size_locked(struct reader *r, struct rfile *f)
{
	while (!f->size_confirmed) {
		struct chunk *c = &f->chunks[0];
		if (f->dead)
			return f->dead;
		if (c->state == CH_FETCHING) {
			pthread_cond_wait(&r->cond, &r->lock);
			continue;
		}
		if (c->state == CH_FAILED &&
		    now_s() - c->failed_at < FAILED_HOLD)
			return c->err;
		c->state = CH_FETCHING;
		pthread_mutex_unlock(&r->lock);
		int err = fetch_chunk(r, f, 0);
		pthread_mutex_lock(&r->lock);
		if (err)
			return err;
		if (!f->size_confirmed) {
			/* No length in the answer: what came is the size
			 * (fetch_chunk saw the body end). */
			f->size_confirmed = true;
			store_file_row(r, f);
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
	 * read through this mount before. */
	res->keep_cache = f != NULL && !f->dead;
	if (f && f->dead) {
		/* A version the server stopped serving: start over. */
		f = NULL;
	}
	if (!f)
		f = rfile_new_locked(r, in);
	if (!f) {
		err = in->size > MAX_FILE_SIZE ? -EFBIG : -ENOMEM;
		goto out;
	}
	if (!f->opens && !f->jobs)
		r->nidle--;
	f->opens++;
	h->r = r;
	h->f = f;
	/* The evictor leaves open files' chunks for last. */
	if (r->store)
		content_pin(r->store, f->item_id);
	err = confirm_size_locked(r, f);
	if (err) {
		if (r->store)
			content_unpin(r->store, f->item_id);
		f->opens--;
		if (!f->opens && !f->jobs) {
			f->idle_since = ++r->idle_clock;
			r->nidle++;
		}
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
	int queued = 0;

	/* Only into the store: prefetched bytes must not crowd memory. */
	if (!r->store || !r->nstarted)
		return 0;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < n && !r->stop; i++) {
		const struct reader_file *in = &files[i];
		if (in->size > r->small ||
		    !room_for_job_locked(r, in->size < 4096 ? 4096 : in->size))
			continue;
		struct rfile *f =
		    rfile_find_locked(r, in->item_id, in->version);
		if (!f)
			f = rfile_new_locked(r, in);
		if (!f || f->dead || f->nchunks != 1)
			continue;
		struct chunk *c = &f->chunks[0];
		if (c->state != CH_UNKNOWN)
			continue; /* stored, in memory, queued or failed */
		if (content_has(r->store, f->item_id, f->version, 0)) {
			c->state = CH_STORED;
			continue;
		}
		if (queue_job_locked(r, f, 0, true)) {
			atomic_fetch_add(&r->prefetched_files, 1);
			queued++;
		}
	}
	reap_idle_locked(r);
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
	f->opens--;
	if (!f->opens && !f->jobs) {
		f->idle_since = ++r->idle_clock;
		r->nidle++;
		reap_idle_locked(r);
	}
	pthread_mutex_unlock(&r->lock);
	free(h);
}

void reader_forget(struct reader *r, const char *item_id, const char *keep)
{
	bool busy = false;

	pthread_mutex_lock(&r->lock);
	url_drop_locked(r, item_id);
	for (struct rfile **pp = &r->files; *pp;) {
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
		*pp = f->next;
		rfile_free(r, f);
		r->nidle--;
	}
	if (!busy && r->store)
		content_drop_item(r->store, item_id, keep);
	pthread_mutex_unlock(&r->lock);
}

void reader_get_stats(struct reader *r, struct reader_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->downloads = atomic_load(&r->downloads);
	out->download_bytes = atomic_load(&r->download_bytes);
	out->download_retries = atomic_load(&r->download_retries);
	out->url_refreshes = atomic_load(&r->url_refreshes);
	out->cache_hits = atomic_load(&r->cache_hits);
	out->cache_misses = atomic_load(&r->cache_misses);
	out->chunks_stored = atomic_load(&r->chunks_stored);
	out->readahead_chunks = atomic_load(&r->readahead_chunks);
	out->prefetched_files = atomic_load(&r->prefetched_files);
	out->hash_verified = atomic_load(&r->hash_verified);
	out->hash_mismatches = atomic_load(&r->hash_mismatches);
	out->size_corrections = atomic_load(&r->size_corrections);
	out->store_errors = atomic_load(&r->store_errors);
	pthread_mutex_lock(&r->lock);
	for (struct rfile *f = r->files; f; f = f->next)
		out->open_files += f->opens;
	out->memory_bytes = r->mem_bytes;
	pthread_mutex_unlock(&r->lock);
}
