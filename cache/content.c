/* SPDX-License-Identifier: MIT */
/*
 * sqlite content store. A chunk is a small row (length, LRU stamp, hash
 * fold) plus its bytes in chunk_data, so LRU updates never rewrite MiBs;
 * reads go through sqlite3_blob_open/read, writes bind the bytes once.
 * Eviction orders by last_used, pinned items last; callers run it off the
 * read path. sqlite codes map to errno here only.
 *
 * Lock order: c->lock only (leaf); never held across network I/O.
 */
#include "config.h"

#include "cache/content.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
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
	char *path;	  /* the database, for the volume's free space */
	uint64_t reserve; /* free bytes left to the metadata store */
};

/* The metadata store shares the volume and must always be able to write
 * (a listing it cannot store is an error): the content store leaves it an
 * eighth of the volume, between 256 KiB and 64 MiB. */
static uint64_t volume_reserve(const char *path)
{
	struct statvfs v;
	uint64_t r;

	if (statvfs(path, &v) != 0)
		return 0;
	r = (uint64_t)v.f_blocks * v.f_frsize / 8;
	return r < 256 << 10 ? 256 << 10 : r > 64 << 20 ? 64 << 20 : r;
}

/* Whether len more bytes (with the WAL's copy and a page of slack) would
 * leave the reserve free. */
static bool volume_has_room(const struct content *c, size_t len)
{
	struct statvfs v;

	if (!c->reserve || statvfs(c->path, &v) != 0)
		return true;
	uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
	return avail >= c->reserve + 2 * (uint64_t)len + 65536;
}

/* v3: the blobs live in their own table, so bumping last_used rewrites a
 * small row instead of the whole MiB-sized record with its overflow chain. */
#define SCHEMA_VERSION 3

/* The store is a cache: a database from another schema is emptied, not
 * migrated. */
static int upgrade_schema(sqlite3 *db)
{
	sqlite3_stmt *st;
	int e, version = 0;

	st = cache_sqlite_prepare(db, "content store", "PRAGMA user_version",
				  &e);
	if (!st)
		return e;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version == SCHEMA_VERSION)
		return 0;
	if (version != 0)
		log_info("content store: schema %d, expected %d: starting "
			 "empty",
			 version, SCHEMA_VERSION);
	return cache_sqlite_exec(
	    db, "content store",
	    "BEGIN;"
	    "DROP TABLE IF EXISTS chunks; DROP TABLE IF EXISTS files;"
	    "DROP TABLE IF EXISTS chunk_data;"
	    "CREATE TABLE chunks(id INTEGER PRIMARY KEY,"
	    " item_id TEXT NOT NULL, version TEXT NOT NULL,"
	    " idx INTEGER NOT NULL, len INTEGER NOT NULL,"
	    " last_used INTEGER NOT NULL, fold BLOB,"
	    " UNIQUE(item_id, version, idx));"
	    "CREATE INDEX chunks_lru ON chunks(last_used);"
	    "CREATE TABLE chunk_data(id INTEGER PRIMARY KEY,"
	    " data BLOB NOT NULL);"
	    "CREATE TRIGGER chunks_gone AFTER DELETE ON chunks BEGIN"
	    " DELETE FROM chunk_data WHERE id=old.id; END;"
	    "CREATE TABLE files("
	    " item_id TEXT NOT NULL, version TEXT NOT NULL,"
	    " size INTEGER NOT NULL, verified INTEGER NOT NULL DEFAULT 0,"
	    " mismatches INTEGER NOT NULL DEFAULT 0,"
	    " PRIMARY KEY(item_id, version));"
	    "PRAGMA user_version=3;"
	    "COMMIT;");
}

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
	c->path = strdup(path);
	if (!c->path) {
		e = -ENOMEM;
		goto fail;
	}
	c->reserve = volume_reserve(path);
	/* Large pages suit MiB blobs; WAL keeps readers off writers' backs;
	 * a bounded WAL keeps the file near the cap. The WAL is not counted
	 * in the cap, so a small cap (a small volume) gets a small WAL: at
	 * most an eighth of the cap between checkpoints, a quarter kept. */
	uint64_t ckpt_pages = max_bytes / 8 / 65536, wal_keep = max_bytes / 4;
	if (!max_bytes || ckpt_pages > 128)
		ckpt_pages = 128; /* 8 MiB: measured, docs/BENCHMARKS.md */
	if (!ckpt_pages)
		ckpt_pages = 1;
	if (!max_bytes || wal_keep > 16 << 20)
		wal_keep = 16 << 20;
	char pragmas[256];
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA page_size=65536; PRAGMA journal_mode=WAL;"
		 " PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=%llu;"
		 " PRAGMA journal_size_limit=%llu;",
		 (unsigned long long)ckpt_pages, (unsigned long long)wal_keep);
	e = cache_sqlite_exec(c->db, "content store", pragmas);
	if (e)
		goto fail;
	e = upgrade_schema(c->db);
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
	free(c->path);
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

/* Transaction control for content_put: a full disk fails every put, and
 * the caller reports that once, so these stay quiet. */
static int quiet_exec(sqlite3 *db, const char *sql)
{
	return cache_sqlite_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

int content_put(struct content *c, const char *item_id, const char *version,
		uint64_t index, const void *data, size_t len,
		const unsigned char *fold)
{
	sqlite3_stmt *st = NULL;
	sqlite3_int64 id = 0;
	int err;

	/* A chunk larger than the whole cap would only push the volume past
	 * it (and the metadata store off it): serve it from memory instead. */
	if (c->max_bytes && len > c->max_bytes)
		return -EFBIG;
	if (!volume_has_room(c, len))
		return -ENOSPC;
	pthread_mutex_lock(&c->lock);
	uint64_t old = chunk_len_locked(c, item_id, version, index);
	/* One transaction: a row never exists without its whole blob. */
	err = quiet_exec(c->db, "BEGIN IMMEDIATE");
	if (err)
		goto out;
	st = cache_sqlite_prepare(
	    c->db, "content store",
	    "INSERT INTO chunks(item_id, version, idx, len, last_used, fold)"
	    " VALUES(?1,?2,?3,?4,?5,?6)"
	    " ON CONFLICT(item_id, version, idx) DO UPDATE"
	    " SET len=?4, last_used=?5, fold=?6 RETURNING id",
	    &err);
	if (!st)
		goto rollback;
	sqlite3_bind_text(st, 1, item_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)index);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)len);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)++c->clock);
	if (fold)
		sqlite3_bind_blob(st, 6, fold, CONTENT_FOLD_LEN, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	else
		err = cache_sqlite_errno(rc == SQLITE_DONE ? SQLITE_ERROR : rc);
	sqlite3_finalize(st);
	if (err)
		goto rollback;
	st = cache_sqlite_prepare(
	    c->db, "content store",
	    "INSERT OR REPLACE INTO chunk_data(id, data) VALUES(?1,?2)", &err);
	if (!st)
		goto rollback;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_blob64(st, 2, data, len, SQLITE_STATIC);
	err = cache_sqlite_errno(sqlite3_step(st));
	sqlite3_finalize(st);
	if (err)
		goto rollback;
	err = quiet_exec(c->db, "COMMIT");
	if (err)
		goto rollback;
	c->bytes = c->bytes - old + len;
	if (!old)
		c->chunks++;
	goto out;
rollback:
	/* A failed COMMIT may have rolled back already (SQLITE_FULL). */
	if (!sqlite3_get_autocommit(c->db))
		quiet_exec(c->db, "ROLLBACK");
	/* The volume is full: give the WAL's space back to it, so that the
	 * metadata store beside us can still write. */
	if (err == -ENOSPC)
		sqlite3_wal_checkpoint_v2(
		    c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
out:
	pthread_mutex_unlock(&c->lock);
	return err;
}

int content_read(struct content *c, const char *item_id, const char *version,
		 uint64_t index, size_t offset, void *buf, size_t cap,
		 size_t *len)
{
	sqlite3_int64 rowid = 0, clen = 0;
	uint64_t last_used = 0;
	sqlite3_blob *blob = NULL;
	int err;

	*len = 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st =
	    cache_sqlite_prepare(c->db, "content store",
				 "SELECT id, len, last_used FROM chunks "
				 "WHERE item_id=?1 AND version=?2 AND idx=?3",
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
		last_used = (uint64_t)sqlite3_column_int64(st, 2);
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
	err = cache_sqlite_errno(sqlite3_blob_open(c->db, "main", "chunk_data",
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
	/* A chunk is read in many pieces: one LRU write per run of reads, not
	 * one per piece (each UPDATE is a WAL page write). */
	if (last_used == c->clock)
		goto out;
	st = cache_sqlite_prepare(c->db, "content store",
				  "UPDATE chunks SET last_used=?2 WHERE id=?1",
				  &err);
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

/* Runs a DELETE whose ?1 is an item id and ?2 a version (NULL when absent). */
static int delete_rows_locked(struct content *c, const char *sql,
			      const char *item_id, const char *version)
{
	int err;
	sqlite3_stmt *st =
	    cache_sqlite_prepare(c->db, "content store", sql, &err);

	if (!st)
		return err;
	sqlite3_bind_text(st, 1, item_id, -1, SQLITE_STATIC);
	if (version)
		sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	err = cache_sqlite_errno(sqlite3_step(st));
	sqlite3_finalize(st);
	return err;
}

int content_drop_item(struct content *c, const char *item_id,
		      const char *keep_version)
{
	pthread_mutex_lock(&c->lock);
	int err = delete_rows_locked(c,
				     "DELETE FROM chunks WHERE item_id=?1 AND "
				     "(?2 IS NULL OR version<>?2)",
				     item_id, keep_version);
	if (!err)
		err = delete_rows_locked(c,
					 "DELETE FROM files WHERE item_id=?1 "
					 "AND (?2 IS NULL OR version<>?2)",
					 item_id, keep_version);
	recount_locked(c);
	pthread_mutex_unlock(&c->lock);
	return err;
}

int content_drop_version(struct content *c, const char *item_id,
			 const char *version)
{
	pthread_mutex_lock(&c->lock);
	int err = delete_rows_locked(
	    c, "DELETE FROM chunks WHERE item_id=?1 AND version=?2", item_id,
	    version);
	recount_locked(c);
	pthread_mutex_unlock(&c->lock);
	return err;
}

int content_has(struct content *c, const char *item_id, const char *version,
		uint64_t index)
{
	pthread_mutex_lock(&c->lock);
	int has = chunk_len_locked(c, item_id, version, index) > 0;
	pthread_mutex_unlock(&c->lock);
	return has;
}

int content_fold(struct content *c, const char *item_id, const char *version,
		 uint64_t nchunks, unsigned char fold[CONTENT_FOLD_LEN])
{
	uint64_t seen = 0;
	int err;

	memset(fold, 0, CONTENT_FOLD_LEN);
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = cache_sqlite_prepare(
	    c->db, "content store",
	    "SELECT idx, fold FROM chunks WHERE item_id=?1 AND version=?2",
	    &err);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, item_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *f = sqlite3_column_blob(st, 1);
		if ((uint64_t)sqlite3_column_int64(st, 0) >= nchunks)
			continue;
		if (!f || sqlite3_column_bytes(st, 1) != CONTENT_FOLD_LEN) {
			err = -ENOENT; /* a chunk without its hash part */
			break;
		}
		for (size_t i = 0; i < CONTENT_FOLD_LEN; i++)
			fold[i] ^= f[i];
		seen++;
	}
	if (!err && rc != SQLITE_DONE)
		err = cache_sqlite_errno(rc);
	sqlite3_finalize(st);
	if (!err && seen != nchunks)
		err = -ENOENT;
out:
	pthread_mutex_unlock(&c->lock);
	return err;
}

int content_file_get(struct content *c, const char *item_id,
		     const char *version, struct content_file *out)
{
	int err;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = cache_sqlite_prepare(
	    c->db, "content store",
	    "SELECT size, verified, mismatches FROM files WHERE item_id=?1 AND "
	    "version=?2",
	    &err);
	if (st) {
		sqlite3_bind_text(st, 1, item_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			out->size = (uint64_t)sqlite3_column_int64(st, 0);
			out->verified = sqlite3_column_int(st, 1);
			out->mismatches = sqlite3_column_int(st, 2);
		}
		err = rc == SQLITE_ROW	  ? 0
		      : rc == SQLITE_DONE ? -ENOENT
					  : cache_sqlite_errno(rc);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&c->lock);
	return err;
}

int content_file_set(struct content *c, const char *item_id,
		     const char *version, const struct content_file *in)
{
	int err;

	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = cache_sqlite_prepare(
	    c->db, "content store",
	    "INSERT INTO files(item_id, version, size, verified, mismatches)"
	    " VALUES(?1,?2,?3,?4,?5) ON CONFLICT(item_id, version) DO UPDATE"
	    " SET size=?3, verified=?4, mismatches=?5",
	    &err);
	if (st) {
		sqlite3_bind_text(st, 1, item_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)in->size);
		sqlite3_bind_int(st, 4, in->verified);
		sqlite3_bind_int(st, 5, in->mismatches);
		err = cache_sqlite_errno(sqlite3_step(st));
		sqlite3_finalize(st);
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

/* One LRU pass; with skip_pinned, chunks of open files are left alone. */
static int evict_pass_locked(struct content *c, bool skip_pinned, long *evicted)
{
	int err = 0;
	sqlite3_stmt *sel = cache_sqlite_prepare(
	    c->db, "content store",
	    "SELECT id, item_id, len FROM chunks ORDER BY last_used", &err);
	sqlite3_stmt *del =
	    sel ? cache_sqlite_prepare(c->db, "content store",
				       "DELETE FROM chunks WHERE id=?1", &err)
		: NULL;

	if (!sel || !del)
		goto out;
	while (c->bytes > c->max_bytes && sqlite3_step(sel) == SQLITE_ROW) {
		if (skip_pinned &&
		    pinned_locked(c, (const char *)sqlite3_column_text(sel, 1)))
			continue;
		sqlite3_bind_int64(del, 1, sqlite3_column_int64(sel, 0));
		err = cache_sqlite_errno(sqlite3_step(del));
		sqlite3_reset(del);
		if (err)
			break;
		c->bytes -= (uint64_t)sqlite3_column_int64(sel, 2);
		c->chunks--;
		(*evicted)++;
	}
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	return err;
}

long content_evict(struct content *c)
{
	long evicted = 0;
	int err = 0;

	pthread_mutex_lock(&c->lock);
	if (c->bytes <= c->max_bytes)
		goto out;
	err = cache_sqlite_exec(c->db, "content store", "BEGIN IMMEDIATE");
	if (err)
		goto out;
	/* Open files' chunks go only when the cap cannot be met otherwise
	 * (one open file larger than the cap): the cap is the promise. */
	err = evict_pass_locked(c, true, &evicted);
	if (!err && c->bytes > c->max_bytes)
		err = evict_pass_locked(c, false, &evicted);
	cache_sqlite_exec(c->db, "content store", err ? "ROLLBACK" : "COMMIT");
	if (err) {
		evicted = 0;
		recount_locked(c);
	}
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
