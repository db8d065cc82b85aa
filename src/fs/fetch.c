/* SPDX-License-Identifier: MIT */
/*
 * Downloading one chunk (reader_impl.h). A fetch streams the chunk's range
 * into a fresh buffer, folding each CONTENT_BLOCK's quickXorHash as bytes
 * arrive (the store checks every later read against these folds, and the
 * chunk's fold is their XOR); it resumes with Range after resets and short
 * bodies, asks for a fresh URL after 401/403/410 (Graph then also tells
 * whether the version moved on), and gives up at its deadline: every
 * attempt, refresh and wait counts against one clock.
 *
 * The first response of a version fixes its size (served length wins); a
 * later one that disagrees, or carries another ETag, means the server has
 * other bytes now: the version is dead and reads fail with EIO.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/qxh.h"
#include "cache/content.h"
#include "fs/reader_impl.h"
#include "fs/url_cache.h"
#include "graph/graph.h"
#include "graph/item.h"

#define MAX_ATTEMPTS	 100 /* a bound on the loop; the deadline rules */
#define MAX_URL_REFRESH	 3
#define URL_TTL		 (50 * 60.0)  /* SharePoint's URLs live about 1 h */
#define CHUNK_DONE_ERROR (-ECANCELED) /* sink: "have what I need" */

/* Sleeps s seconds, or until the deadline if sooner: 0, or -ESHUTDOWN
 * when the daemon is stopping (the sleep ends early then). */
static int sleep_until(struct reader *r, double s, double deadline)
{
	double left = deadline - reader_now();

	if (s > left)
		s = left;
	return s > 0 ? graph_sleep(r->g, s) : 0;
}

static double backoff(int attempt)
{
	double d = 0.1;

	for (int i = 1; i < attempt && d < 5; i++)
		d *= 2;
	return d > 5 ? 5 : d;
}

/* ---- download URLs ------------------------------------------------------ */

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
	double now = reader_now(), at = 0;
	bool suspect;

	*url = NULL;
	pthread_mutex_lock(&r->lock);
	suspect = f->url_suspect;
	if (!suspect && f->url && now - f->url_at < URL_TTL)
		*url = strdup(f->url);
	pthread_mutex_unlock(&r->lock);
	if (!*url && !suspect &&
	    (*url = url_cache_get(r->urls, f->item_id, URL_TTL, &at))) {
		pthread_mutex_lock(&r->lock);
		free(f->url);
		f->url = strdup(*url);
		f->url_at = at;
		pthread_mutex_unlock(&r->lock);
	}
	if (*url)
		return 0;

	char *fresh = NULL;
	int err = url_from_graph(r, f, suspect, &fresh);
	pthread_mutex_lock(&r->lock);
	if (!err) {
		free(f->url);
		f->url = strdup(fresh);
		f->url_at = reader_now();
		f->url_suspect = false;
	} else if (err == -ESTALE) {
		f->dead = -ESTALE;
	}
	pthread_mutex_unlock(&r->lock);
	if (!err)
		url_cache_drop(r->urls, f->item_id);
	*url = fresh;
	return err;
}

/* ---- one chunk's stream ------------------------------------------------- */

struct stream {
	struct reader *r;
	struct rfile *f;
	uint64_t idx;
	uint64_t cstart, cend; /* the chunk's span; cend may move once */
	struct chunk_buf *buf;
	uint64_t pos;  /* absolute offset of the next byte we need */
	uint64_t skip; /* bytes of this response before pos (a 200) */
	struct qxh h;  /* the current block's fold */
	struct http_response *resp;
	bool checked;
	bool stopped; /* the sink had all it needed and cut the body */
	int err;      /* why the sink stopped, besides CHUNK_DONE_ERROR */
};

/* The server says the version has total bytes: the chunk's end follows. */
static int size_seen(struct stream *s, uint64_t total)
{
	struct reader *r = s->r;

	pthread_mutex_lock(&r->lock);
	int err = reader_size_seen_locked(r, s->f, total);
	if (!err) {
		uint64_t end = s->cstart + r->chunk;
		s->cend = end < s->f->size ? end : s->f->size;
		if (s->cend < s->cstart)
			s->cend = s->cstart;
	}
	pthread_mutex_unlock(&r->lock);
	return err;
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
	pthread_mutex_unlock(&s->r->lock);
	if (!err && total >= 0)
		err = size_seen(s, (uint64_t)total);
	return err;
}

/* Bytes of the chunk so far, and the block the next one belongs to. */
static void fold_bytes(struct stream *s, const char *data, size_t n)
{
	while (n) {
		uint64_t in = s->pos - s->cstart;
		uint64_t room = CONTENT_BLOCK - in % CONTENT_BLOCK;
		size_t k = n < room ? n : (size_t)room;
		if (in % CONTENT_BLOCK == 0)
			qxh_init_at(&s->h, s->pos);
		qxh_update_copy(&s->h, s->buf->data + in, data, k);
		s->pos += k;
		data += k;
		n -= k;
		if (k == room)
			memcpy(s->buf->folds +
				   in / CONTENT_BLOCK * CONTENT_FOLD_LEN,
			       s->h.fold, CONTENT_FOLD_LEN);
	}
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
		fold_bytes(s, data, n);
		data += n;
		len -= n;
	}
	return 0;
}

/* The last block's fold when it ended short of CONTENT_BLOCK. */
static void finish_folds(struct stream *s)
{
	uint64_t in = s->pos - s->cstart;

	s->buf->len = (size_t)in;
	if (in % CONTENT_BLOCK)
		memcpy(s->buf->folds + in / CONTENT_BLOCK * CONTENT_FOLD_LEN,
		       s->h.fold, CONTENT_FOLD_LEN);
}

/* Says why a fetch gives up, once, at warning level. */
static void give_up(const struct rfile *f, const char *why, int attempts,
		    int err, long status)
{
	if (err)
		log_warn("item %s: %s (%d attempts): %s", f->item_id, why,
			 attempts, strerror(-err));
	else
		log_warn("item %s: %s (%d attempts): HTTP %ld", f->item_id, why,
			 attempts, status);
}

int fetch_chunk(struct reader *r, struct rfile *f, uint64_t idx,
		double deadline)
{
	struct stream s = {.r = r, .f = f, .idx = idx};
	struct http_response resp;
	int err = 0, refreshes = 0, attempt;
	bool whole;

	s.cstart = idx * r->chunk;
	pthread_mutex_lock(&r->lock);
	/* Until the size is confirmed, ask for the whole chunk: the listing
	 * may be short. */
	s.cend = f->size_confirmed ? s.cstart + reader_chunk_len(r, f, idx)
				   : s.cstart + r->chunk;
	whole = idx == 0 && !f->size_confirmed && f->size <= r->small;
	pthread_mutex_unlock(&r->lock);
	s.buf = budget_buf_get(r->budget, (size_t)r->chunk);
	if (!s.buf) {
		reader_fetch_failed(r, f, idx, -ENOMEM);
		return -ENOMEM;
	}
	s.pos = s.cstart;
	http_response_init(&resp);

	for (attempt = 1;; attempt++) {
		char *url = NULL;
		if (attempt > 1 && reader_now() >= deadline) {
			/* read_timeout: the application gets EIO rather than
			 * waiting on a service that does not come back. */
			give_up(f, "no download within read_timeout",
				attempt - 1, err ? err : -ETIMEDOUT,
				resp.status);
			atomic_fetch_add(&r->timeouts, 1);
			err = -ETIMEDOUT;
			break;
		}
		if (attempt > MAX_ATTEMPTS) {
			give_up(f, "download failed", MAX_ATTEMPTS, err,
				resp.status);
			err = err ? err : -EIO;
			break;
		}
		if (attempt > 1)
			atomic_fetch_add(&r->download_retries, 1);
		err = current_url(r, f, &url);
		if (err) {
			free(url);
			if (err == -ESTALE || err == -ENOENT ||
			    err == -EACCES || err == -ESHUTDOWN ||
			    sleep_until(r, backoff(attempt), deadline))
				break;
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
		/* The transfer, and any pause of downloads before it, end by
		 * the read's deadline. */
		err = graph_download_until(r->g, url, off, len, deadline,
					   stream_body, &s, &resp);
		free(url);
		if (err == CHUNK_DONE_ERROR)
			err = 0;
		if (err == -ETIMEDOUT) {
			/* The transfer ran out of the read's time, or downloads
			 * are paused past it (the service's Retry-After). */
			log_warn("item %s: no download within read_timeout "
				 "(%d attempts): %s",
				 f->item_id, attempt,
				 resp.error[0] ? resp.error : "timed out");
			atomic_fetch_add(&r->timeouts, 1);
			break;
		}
		if (err == -ESHUTDOWN)
			break;
		if (!err && !s.checked &&
		    (resp.status == 200 || resp.status == 206))
			err = check_response(&s); /* an empty body */
		if (err == -ESTALE || s.err == -ESTALE) {
			err = -ESTALE;
			break;
		}
		if (err == -EFBIG || s.err == -EFBIG) {
			err = -EFBIG;
			break;
		}
		if (!err && resp.status == 200 && resp.content_length < 0 &&
		    s.skip == 0 && !s.stopped) {
			/* A whole body without a length ended: that is the
			 * file's end. */
			err = size_seen(&s, s.pos);
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
				err = size_seen(&s, (uint64_t)total);
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
			if (sleep_until(r, backoff(attempt), deadline))
				break;
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
			if (sleep_until(r, backoff(attempt) / 2, deadline))
				break;
			continue;
		}
		break; /* -ESHUTDOWN among them: the daemon stops */
	}
	http_response_release(&resp);
	if (err) {
		chunk_buf_unref(s.buf);
		reader_fetch_failed(r, f, idx, err);
		return err;
	}
	finish_folds(&s);
	reader_deliver(r, f, idx, s.buf);
	return 0;
}

int fetch_from_store(struct reader *r, struct rfile *f, uint64_t idx)
{
	pthread_mutex_lock(&r->lock);
	uint64_t len = reader_chunk_len(r, f, idx);
	pthread_mutex_unlock(&r->lock);
	struct chunk_buf *buf = budget_buf_get(r->budget, (size_t)r->chunk);
	int err = buf ? content_read(r->store, f->item_id, f->version, idx, 0,
				     buf->data, (size_t)len)
		      : -ENOMEM;
	if (!err) {
		buf->len = (size_t)len;
		reader_loaded(r, f, idx, buf);
		return 0;
	}
	chunk_buf_unref(buf);
	pthread_mutex_lock(&r->lock);
	struct chunk *c = chunk_map_get(&f->chunks, idx);
	if (c)
		c->stored = false;
	pthread_mutex_unlock(&r->lock);
	return err;
}
