/* SPDX-License-Identifier: MIT */
/*
 * sqlite content store. Each chunk row carries its length; reads go through
 * sqlite3_blob_open/read (no copy of the whole blob), writes bind the bytes
 * once. Eviction orders by last_used and skips pinned items; callers run it
 * off the read path. sqlite codes map to errno here only.
 *
 * Lock order: c->lock only (leaf); never held across network I/O.
 */
#include "config.h"

#include "cache/content.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "cache/sqlite_util.h"

struct pin {
	char *item_id;
	unsigned count;
	struct pin *next;
};

struct content {
	sqlite3 *db;
	pthread_mutex_t lock;
	uint64_t max_bytes;
	uint64_t bytes, chunks, evicted;
	uint64_t clock; /* monotonic use counter for LRU */
	struct pin *pins;
};

struct content *content_open(const char *path, uint64_t max_bytes, int *err)
{
	struct content *c = calloc(1, sizeof(*c));
	sqlite3_stmt *st;
	int e;

	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->max_bytes = max_bytes;
	e = cache_sqlite_open(path, "content store", &c->db);
	if (e)
		goto fail;
	/* Large pages suit MiB blobs; WAL keeps readers off writers' backs. */
	e = cache_sqlite_exec(
	    c->db, "content store",
	    "PRAGMA page_size=65536; PRAGMA journal_mode=WAL;"
	    " PRAGMA synchronous=NORMAL;"
	    "CREATE TABLE IF NOT EXISTS chunks("
	    " item_id TEXT NOT NULL, version TEXT NOT NULL,"
	    " idx INTEGER NOT NULL, len INTEGER NOT NULL,"
	    " last_used INTEGER NOT NULL, data BLOB NOT NULL,"
	    " PRIMARY KEY(item_id, version, idx));"
	    "CREATE INDEX IF NOT EXISTS chunks_lru ON chunks(last_used);");
	if (e)
		goto fail;
	st = cache_sqlite_prepare(c->db, "content store",
				  "SELECT COALESCE(SUM(len),0), COUNT(*), "
				  "COALESCE(MAX(last_used),0) FROM chunks",
				  &e);
	if (!st)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW) {
		c->bytes = (uint64_t)sqlite3_column_int64(st, 0);
		c->chunks = (uint64_t)sqlite3_column_int64(st, 1);
		c->clock = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	*err = 0;
	return c;
fail:
	content_close(c);
	*err = e;
	return NULL;
}

void content_close(struct content *c)
{
	if (!c)
		return;
	if (c->db)
		sqlite3_close_v2(c->db);
	while (c->pins) {
		struct pin *p = c->pins;
		c->pins = p->next;
		free(p->item_id);
		free(p);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Length of an existing chunk, or 0. */
static uint64_t chunk_len_locked(struct content *c, const char *item_id,
				 const char *version, uint64_t index)
{
	int err;
	uint64_t len = 0;
	sqlite3_stmt *st = cache_sqlite_prepare(
	    c->db, "content store",
	    "SELECT len FROM chunks WHERE item_id=?1 AND version=?2 AND idx=?3",
	    &err);

	if (!st)
		return 0;
	sqlite3_bind_text(st, 1, item_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)index);
	if (sqlite3_step(st) == SQLITE_ROW)
		len = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return len;
}

int content_put(struct content *c, const char *item_id, const char *version,
		uint64_t index, const void *data, size_t len)
{
	int err;

	pthread_mutex_lock(&c->lock);
	uint64_t old = chunk_len_locked(c, item_id, version, index);
	sqlite3_stmt *st = cache_sqlite_prepare(
	    c->db, "content store",
	    "INSERT INTO chunks(item_id, version, idx, len, last_used, data)"
	    " VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(item_id, version, idx) DO "
	    "UPDATE"
	    " SET len=?4, last_used=?5, data=?6",
	    &err);
	if (st) {
		sqlite3_bind_text(st, 1, item_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)index);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)len);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)++c->clock);
		sqlite3_bind_blob64(st, 6, data, len, SQLITE_STATIC);
		err = cache_sqlite_errno(sqlite3_step(st));
		sqlite3_finalize(st);
	}
	if (!err) {
		c->bytes = c->bytes - old + len;
		if (!old)
			c->chunks++;
	}
	pthread_mutex_unlock(&c->lock);
	return err;
}

int content_read(struct content *c, const char *item_id, const char *version,
		 uint64_t index, size_t offset, void *buf, size_t cap,
		 size_t *len)
{
	sqlite3_int64 rowid = 0, clen = 0;
	sqlite3_blob *blob = NULL;
	int err;

	*len = 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st =
	    cache_sqlite_prepare(c->db, "content store",
				 "SELECT rowid, len FROM chunks WHERE "
				 "item_id=?1 AND version=?2 AND idx=?3",
				 &err);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, item_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)index);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rowid = sqlite3_column_int64(st, 0);
		clen = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		err = rc == SQLITE_DONE ? -ENOENT : cache_sqlite_errno(rc);
		goto out;
	}
	if ((sqlite3_int64)offset >= clen)
		goto touch;
	size_t n = (size_t)(clen - (sqlite3_int64)offset);
	if (n > cap)
		n = cap;
	err = cache_sqlite_errno(sqlite3_blob_open(c->db, "main", "chunks",
						   "data", rowid, 0, &blob));
	if (!err && sqlite3_blob_bytes(blob) != clen)
		err = -EUCLEAN; /* length column and blob disagree: never serve
				   it */
	if (!err)
		err = cache_sqlite_errno(
		    sqlite3_blob_read(blob, buf, (int)n, (int)offset));
	sqlite3_blob_close(blob);
	if (err)
		goto out;
	*len = n;
touch:
	st = cache_sqlite_prepare(
	    c->db, "content store",
	    "UPDATE chunks SET last_used=?2 WHERE rowid=?1", &err);
	if (st) {
		sqlite3_bind_int64(st, 1, rowid);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)++c->clock);
		sqlite3_step(st);
		sqlite3_finalize(st);
		err = 0;
	}
out:
	pthread_mutex_unlock(&c->lock);
	return err;
}

static void recount_locked(struct content *c)
{
	int err;
	sqlite3_stmt *st = cache_sqlite_prepare(
	    c->db, "content store",
	    "SELECT COALESCE(SUM(len),0), COUNT(*) FROM chunks", &err);

	if (st && sqlite3_step(st) == SQLITE_ROW) {
		c->bytes = (uint64_t)sqlite3_column_int64(st, 0);
		c->chunks = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
}

int content_drop_item(struct content *c, const char *item_id,
		      const char *keep_version)
{
	int err;

	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st =
	    cache_sqlite_prepare(c->db, "content store",
				 "DELETE FROM chunks WHERE item_id=?1 AND "
				 "(?2 IS NULL OR version<>?2)",
				 &err);
	if (st) {
		sqlite3_bind_text(st, 1, item_id, -1, SQLITE_STATIC);
		if (keep_version)
			sqlite3_bind_text(st, 2, keep_version, -1,
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 2);
		err = cache_sqlite_errno(sqlite3_step(st));
		sqlite3_finalize(st);
		recount_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
	return err;
}

void content_pin(struct content *c, const char *item_id)
{
	pthread_mutex_lock(&c->lock);
	struct pin *p = c->pins;
	while (p && strcmp(p->item_id, item_id) != 0)
		p = p->next;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (p)
			p->item_id = strdup(item_id);
		if (!p || !p->item_id) {
			/* Out of memory: the item stays evictable, which only
			 * costs a re-download. */
			free(p);
			pthread_mutex_unlock(&c->lock);
			return;
		}
		p->next = c->pins;
		c->pins = p;
	}
	p->count++;
	pthread_mutex_unlock(&c->lock);
}

void content_unpin(struct content *c, const char *item_id)
{
	pthread_mutex_lock(&c->lock);
	for (struct pin **pp = &c->pins; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->item_id, item_id) == 0) {
			if (--(*pp)->count == 0) {
				struct pin *p = *pp;
				*pp = p->next;
				free(p->item_id);
				free(p);
			}
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

static int pinned_locked(const struct content *c, const char *item_id)
{
	for (const struct pin *p = c->pins; p; p = p->next)
		if (strcmp(p->item_id, item_id) == 0)
			return 1;
	return 0;
}

long content_evict(struct content *c)
{
	long evicted = 0;
	int err = 0;

	pthread_mutex_lock(&c->lock);
	if (c->bytes <= c->max_bytes)
		goto out;
	sqlite3_stmt *sel = cache_sqlite_prepare(
	    c->db, "content store",
	    "SELECT rowid, item_id, len FROM chunks ORDER BY last_used", &err);
	sqlite3_stmt *del = sel ? cache_sqlite_prepare(
				      c->db, "content store",
				      "DELETE FROM chunks WHERE rowid=?1", &err)
				: NULL;
	if (!sel || !del) {
		sqlite3_finalize(sel);
		goto out;
	}
	cache_sqlite_exec(c->db, "content store", "BEGIN IMMEDIATE");
	while (c->bytes > c->max_bytes && sqlite3_step(sel) == SQLITE_ROW) {
		if (pinned_locked(c, (const char *)sqlite3_column_text(sel, 1)))
			continue;
		sqlite3_bind_int64(del, 1, sqlite3_column_int64(sel, 0));
		err = cache_sqlite_errno(sqlite3_step(del));
		sqlite3_reset(del);
		if (err)
			break;
		c->bytes -= (uint64_t)sqlite3_column_int64(sel, 2);
		c->chunks--;
		evicted++;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	cache_sqlite_exec(c->db, "content store", err ? "ROLLBACK" : "COMMIT");
	if (err)
		recount_locked(c);
	c->evicted += (uint64_t)evicted;
out:
	pthread_mutex_unlock(&c->lock);
	return err ? err : evicted;
}

void content_get_stats(struct content *c, struct content_stats *out)
{
	pthread_mutex_lock(&c->lock);
	out->bytes = c->bytes;
	out->chunks = c->chunks;
	out->evicted = c->evicted;
	pthread_mutex_unlock(&c->lock);
}
