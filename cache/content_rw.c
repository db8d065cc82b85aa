/* SPDX-License-Identifier: MIT */
/*
 * The content store's reads and writes (see content.h, content_impl.h).
 *
 * Writes: one transaction per batch on the writer connection, with io held
 * exclusively so no reader is mid-read when sqlite takes its locks. Before
 * the rows go in, least recently used chunks are evicted until the batch
 * fits the cap, which counts the neighbours' files and the store's own
 * overhead (interior pages, chunk rows, the journal of a transaction), so
 * the directory's disk use stays within it.
 *
 * Reads: a read connection from the pool, one lookup, one blob handle;
 * whole blocks go straight into the caller's buffer and are checked there,
 * partly wanted blocks through the connection's scratch block. A block
 * that fails its check dooms its chunk (the writer drops it) and the read
 * is a miss.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "base/log.h"
#include "base/qxh.h"
#include "cache/content.h"
#include "cache/content_impl.h"
#include "cache/sqlite_util.h"

/* ---- marks left for the writer ------------------------------------------ */

static void mark_used(struct content *c, int64_t id)
{
	pthread_mutex_lock(&c->mark_lock);
	if (!(c->nmarks && c->marks[c->nmarks - 1] == id) &&
	    c->nmarks < MARKS_MAX)
		c->marks[c->nmarks++] = id;
	pthread_mutex_unlock(&c->mark_lock);
}

static void doom(struct content *c, int64_t id, const char *item_id,
		 uint64_t index, const char *why)
{
	pthread_mutex_lock(&c->mark_lock);
	if (c->ndoomed < sizeof(c->doomed) / sizeof(c->doomed[0]))
		c->doomed[c->ndoomed++] = id;
	pthread_mutex_unlock(&c->mark_lock);
	atomic_fetch_add(&c->damaged_chunks, 1);
	if (!atomic_exchange(&c->damage_logged, 1))
		log_warn("content cache: chunk %llu of item %s %s; dropped, "
			 "reading it from the network",
			 (unsigned long long)index, item_id, why);
	else
		log_debug("content cache: chunk %llu of item %s %s",
			  (unsigned long long)index, item_id, why);
}

/* Deletes one chunk by row id; its length leaves the count. */
static int delete_locked(struct content *c, int64_t id)
{
	sqlite3_stmt *st = c->st.del;
	int rc;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		c->bytes -= (uint64_t)sqlite3_column_int64(st, 0);
		c->chunks--;
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	return content_sqlite_err(c, rc);
}

void content_apply_marks_locked(struct content *c)
{
	int64_t marks[MARKS_MAX], doomed[64];
	size_t nmarks, ndoomed;

	pthread_mutex_lock(&c->mark_lock);
	nmarks = c->nmarks;
	ndoomed = c->ndoomed;
	memcpy(marks, c->marks, nmarks * sizeof(marks[0]));
	memcpy(doomed, c->doomed, ndoomed * sizeof(doomed[0]));
	c->nmarks = c->ndoomed = 0;
	pthread_mutex_unlock(&c->mark_lock);
	for (size_t i = 0; i < nmarks; i++) {
		sqlite3_bind_int64(c->st.touch, 1, marks[i]);
		sqlite3_bind_int64(c->st.touch, 2, (sqlite3_int64)++c->clock);
		sqlite3_step(c->st.touch);
		sqlite3_reset(c->st.touch);
	}
	for (size_t i = 0; i < ndoomed; i++)
		delete_locked(c, doomed[i]);
}

/* ---- writing ------------------------------------------------------------ */

static uint64_t allocated(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* Chunk bytes the store may hold with extra more chunks: the cap, less the
 * neighbours' files, less what the database needs beside chunk bytes (a
 * few pages for the tables' inner pages and a transaction's journal, and
 * each chunk's row with its folds). */
static uint64_t budget_locked(struct content *c, size_t extra)
{
	uint64_t other = 16 * (uint64_t)CONTENT_PAGE_SIZE;

	if (!c->max_bytes)
		return UINT64_MAX;
	for (size_t i = 0; c->neighbours[i]; i++)
		other += allocated(c->neighbours[i]);
	other += (c->chunks + extra) *
		 (content_folds_len(c->chunk_size) + CONTENT_FOLD_LEN + 256);
	return c->max_bytes > other ? c->max_bytes - other : 0;
}

/* Whether len more bytes leave the metadata store its reserve. */
static bool volume_has_room(const struct content *c, uint64_t len)
{
	struct statvfs v;

	if (!c->reserve || statvfs(c->path, &v) != 0)
		return true;
	uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
	return avail >= c->reserve + len + 16 * (uint64_t)CONTENT_PAGE_SIZE;
}

/* Evicts least recently used chunks until stored + need fits budget;
 * with skip_pinned, open items' chunks stay. */
static int evict_pass_locked(struct content *c, uint64_t need, uint64_t budget,
			     bool skip_pinned, long *evicted)
{
	sqlite3_stmt *sel = c->st.lru;
	int rc, err = 0;

	while (c->bytes + need > budget &&
	       (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		if (skip_pinned &&
		    content_pinned(c,
				   (const char *)sqlite3_column_text(sel, 1)))
			continue;
		err = delete_locked(c, sqlite3_column_int64(sel, 0));
		if (err)
			break;
		(*evicted)++;
	}
	sqlite3_reset(sel);
	return err;
}

static int evict_locked(struct content *c, uint64_t need, uint64_t budget,
			long *evicted)
{
	int err = 0;

	if (c->bytes + need <= budget)
		return 0;
	/* Open files' chunks go only when the cap cannot be met otherwise
	 * (one open file larger than the cap): the cap is the promise. */
	err = evict_pass_locked(c, need, budget, true, evicted);
	if (!err && c->bytes + need > budget)
		err = evict_pass_locked(c, need, budget, false, evicted);
	return err;
}

/* Transaction control: a full disk fails every write and the caller
 * reports that once, so these stay quiet. */
static int quiet_exec(struct content *c, const char *sql)
{
	return content_sqlite_err(c,
				  sqlite3_exec(c->db, sql, NULL, NULL, NULL));
}

static void chunk_fold(const struct content_chunk *k,
		       unsigned char fold[CONTENT_FOLD_LEN])
{
	size_t n = content_folds_len(k->len) / CONTENT_FOLD_LEN;

	memset(fold, 0, CONTENT_FOLD_LEN);
	for (size_t b = 0; b < n; b++)
		for (size_t i = 0; i < CONTENT_FOLD_LEN; i++)
			fold[i] ^= k->folds[b * CONTENT_FOLD_LEN + i];
}

static int put_one_locked(struct content *c, const struct content_chunk *k)
{
	unsigned char fold[CONTENT_FOLD_LEN];
	sqlite3_int64 id = 0;
	uint64_t old = 0;
	int rc, err;

	sqlite3_stmt *st = c->st.old_len;
	sqlite3_bind_text(st, 1, k->item_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, k->version, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)k->index);
	if (sqlite3_step(st) == SQLITE_ROW)
		old = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);

	chunk_fold(k, fold);
	st = c->st.put_row;
	sqlite3_bind_text(st, 1, k->item_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, k->version, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)k->index);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)k->len);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)++c->clock);
	sqlite3_bind_blob(st, 6, fold, CONTENT_FOLD_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, k->folds, (int)content_folds_len(k->len),
			  SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	err = content_sqlite_err(c, rc == SQLITE_DONE ? SQLITE_OK : rc);
	if (err)
		return err;
	/* The bytes go in through a blob handle: binding them would have
	 * sqlite build a record of the chunk's size first (a fresh mapping
	 * per chunk, every page of it faulting). */
	st = c->st.put_data;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)k->len);
	err = content_sqlite_err(c, sqlite3_step(st));
	sqlite3_reset(st);
	if (err)
		return err;
	if (k->len) {
		sqlite3_blob *blob = NULL;
		err = content_sqlite_err(
		    c, sqlite3_blob_open(c->db, "main", "chunk_data", "data",
					 id, 1, &blob));
		if (!err)
			err = content_sqlite_err(
			    c,
			    sqlite3_blob_write(blob, k->data, (int)k->len, 0));
		sqlite3_blob_close(blob);
		if (err)
			return err;
	}
	c->bytes = c->bytes - old + k->len;
	if (!old)
		c->chunks++;
	return 0;
}

/* After a rollback: the counts followed the statements undone. */
static void recount_locked(struct content *c)
{
	int e;
	sqlite3_stmt *st = cache_sqlite_prepare(
	    c->db, "content store",
	    "SELECT COALESCE(SUM(len),0), COUNT(*) FROM chunks", &e);

	if (st && sqlite3_step(st) == SQLITE_ROW) {
		c->bytes = (uint64_t)sqlite3_column_int64(st, 0);
		c->chunks = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
}

static void lock_writer(struct content *c)
{
	pthread_rwlock_wrlock(&c->io);
	pthread_mutex_lock(&c->wlock);
	if (atomic_load(&c->damaged))
		content_reset_locked(c, "sqlite found it damaged");
}

static void unlock_writer(struct content *c)
{
	pthread_mutex_unlock(&c->wlock);
	pthread_rwlock_unlock(&c->io);
}

int content_put(struct content *c, struct content_chunk *chunks, size_t n)
{
	uint64_t need = 0;
	long evicted = 0;
	int err, stored = 0;

	for (size_t i = 0; i < n; i++) {
		need += chunks[i].len;
		chunks[i].stored = 0;
	}
	if (!volume_has_room(c, need))
		return -ENOSPC;
	lock_writer(c);
	if (!c->db) {
		err = -EIO;
		goto out;
	}
	/* What fits the cap goes in; the rest is served from memory. */
	uint64_t budget = budget_locked(c, n);
	bool *take = calloc(n ? n : 1, sizeof(*take));
	if (!take) {
		err = -ENOMEM;
		goto out;
	}
	need = 0;
	for (size_t i = 0; i < n; i++)
		if (need + chunks[i].len <= budget) {
			need += chunks[i].len;
			take[i] = true;
		}
	if (!need) {
		free(take);
		goto out_ok;
	}
	err = quiet_exec(c, "BEGIN IMMEDIATE");
	if (!err) {
		content_apply_marks_locked(c);
		err = evict_locked(c, need, budget, &evicted);
	}
	for (size_t i = 0; !err && i < n; i++) {
		if (!take[i])
			continue;
		err = put_one_locked(c, &chunks[i]);
		chunks[i].stored = !err;
		stored += !err;
	}
	free(take);
	err = err ? err : quiet_exec(c, "COMMIT");
	if (err) {
		/* A failed COMMIT may have rolled back already (SQLITE_FULL).
		 */
		if (!sqlite3_get_autocommit(c->db))
			quiet_exec(c, "ROLLBACK");
		recount_locked(c);
		for (size_t i = 0; i < n; i++)
			chunks[i].stored = 0;
		stored = 0;
		goto out;
	}
	c->evicted += (uint64_t)evicted;
out_ok:
	err = 0;
out:
	unlock_writer(c);
	return err ? err : stored;
}

int content_put_bytes(struct content *c, const char *item_id,
		      const char *version, uint64_t index, const void *data,
		      size_t len)
{
	unsigned char *folds = malloc(content_folds_len(len) + 1);
	const unsigned char *p = data;

	if (!folds)
		return -ENOMEM;
	for (size_t b = 0; b * CONTENT_BLOCK < len; b++) {
		size_t n = len - b * CONTENT_BLOCK < CONTENT_BLOCK
			       ? len - b * CONTENT_BLOCK
			       : CONTENT_BLOCK;
		struct qxh h;
		qxh_init_at(&h, index * c->chunk_size + b * CONTENT_BLOCK);
		qxh_update(&h, p + b * CONTENT_BLOCK, n);
		memcpy(folds + b * CONTENT_FOLD_LEN, h.fold, CONTENT_FOLD_LEN);
	}
	struct content_chunk k = {.item_id = item_id,
				  .version = version,
				  .index = index,
				  .data = data,
				  .len = len,
				  .folds = folds};
	int n = content_put(c, &k, 1);
	free(folds);
	return n < 0 ? n : n == 1 ? 0 : -EFBIG;
}

long content_evict(struct content *c)
{
	long evicted = 0;
	int err;

	lock_writer(c);
	if (!c->db) {
		err = -EIO;
		goto out;
	}
	err = quiet_exec(c, "BEGIN IMMEDIATE");
	if (err)
		goto out;
	content_apply_marks_locked(c);
	err = evict_locked(c, 0, budget_locked(c, 0), &evicted);
	err = err ? err : quiet_exec(c, "COMMIT");
	if (err) {
		if (!sqlite3_get_autocommit(c->db))
			quiet_exec(c, "ROLLBACK");
		recount_locked(c);
		evicted = 0;
	}
	c->evicted += (uint64_t)evicted;
out:
	unlock_writer(c);
	return err ? err : evicted;
}

/* Runs a DELETE whose ?1 is an item id and ?2 a version (NULL: absent). */
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
	err = content_sqlite_err(c, sqlite3_step(st));
	sqlite3_finalize(st);
	return err;
}

int content_drop_item(struct content *c, const char *item_id,
		      const char *keep_version)
{
	int err = -EIO;

	lock_writer(c);
	if (c->db) {
		err = delete_rows_locked(
		    c,
		    "DELETE FROM chunks WHERE item_id=?1 AND "
		    "(?2 IS NULL OR version<>?2)",
		    item_id, keep_version);
		if (!err)
			err = delete_rows_locked(
			    c,
			    "DELETE FROM files WHERE item_id=?1 "
			    "AND (?2 IS NULL OR version<>?2)",
			    item_id, keep_version);
		recount_locked(c);
	}
	unlock_writer(c);
	return err;
}

int content_drop_version(struct content *c, const char *item_id,
			 const char *version, int keep_row)
{
	int err = -EIO;

	lock_writer(c);
	if (c->db) {
		err = delete_rows_locked(
		    c, "DELETE FROM chunks WHERE item_id=?1 AND version=?2",
		    item_id, version);
		if (!err && !keep_row)
			err = delete_rows_locked(
			    c,
			    "DELETE FROM files WHERE item_id=?1 AND version=?2",
			    item_id, version);
		recount_locked(c);
	}
	unlock_writer(c);
	return err;
}

int content_file_set(struct content *c, const char *item_id,
		     const char *version, const struct content_file *in)
{
	int err = -EIO;

	lock_writer(c);
	if (!c->db)
		goto out;
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
		err = content_sqlite_err(c, sqlite3_step(st));
		sqlite3_finalize(st);
	}
out:
	unlock_writer(c);
	return err;
}

/* ---- reading ------------------------------------------------------------ */

/* A read connection with io held shared; release with end_read(). */
static struct rconn *begin_read(struct content *c, int *err)
{
	pthread_rwlock_rdlock(&c->io);
	struct rconn *rc = content_conn_get(c, err);
	if (!rc)
		pthread_rwlock_unlock(&c->io);
	return rc;
}

static void end_read(struct content *c, struct rconn *rc)
{
	content_conn_put(c, rc);
	pthread_rwlock_unlock(&c->io);
}

static int find(struct content *c, struct rconn *rc, const char *item_id,
		const char *version, uint64_t index)
{
	sqlite3_bind_text(rc->find, 1, item_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(rc->find, 2, version, -1, SQLITE_STATIC);
	sqlite3_bind_int64(rc->find, 3, (sqlite3_int64)index);
	int r = sqlite3_step(rc->find);
	if (r == SQLITE_ROW)
		return 0;
	sqlite3_reset(rc->find);
	return r == SQLITE_DONE ? -ENOENT : content_sqlite_err(c, r);
}

uint64_t content_chunk_len(struct content *c, const char *item_id,
			   const char *version, uint64_t index)
{
	uint64_t len = 0;
	int err;
	struct rconn *rc = begin_read(c, &err);

	if (!rc)
		return 0;
	if (find(c, rc, item_id, version, index) == 0) {
		len = (uint64_t)sqlite3_column_int64(rc->find, 1);
		sqlite3_reset(rc->find);
	}
	end_read(c, rc);
	return len;
}

static bool block_ok(const struct content *c, uint64_t at, const void *p,
		     size_t n, const unsigned char *fold)
{
	struct qxh h;

	qxh_init_at(&h, at);
	qxh_update(&h, p, n);
	return memcmp(h.fold, fold, CONTENT_FOLD_LEN) == 0;
}

int content_read(struct content *c, const char *item_id, const char *version,
		 uint64_t index, size_t offset, void *buf, size_t n)
{
	sqlite3_blob *blob = NULL;
	int err;
	struct rconn *rc = begin_read(c, &err);

	if (!rc)
		return err;
	err = find(c, rc, item_id, version, index);
	if (err)
		goto out_conn;
	int64_t id = sqlite3_column_int64(rc->find, 0);
	uint64_t len = (uint64_t)sqlite3_column_int64(rc->find, 1);
	const unsigned char *folds = sqlite3_column_blob(rc->find, 2);
	if (offset + n > len) {
		err = -ENOENT; /* shorter than the version says: not this one */
		goto out_row;
	}
	if (!folds || (size_t)sqlite3_column_bytes(rc->find, 2) !=
			  content_folds_len((size_t)len)) {
		doom(c, id, item_id, index, "has no checks");
		err = -EUCLEAN;
		goto out_row;
	}
	err = content_sqlite_err(c,
				 sqlite3_blob_open(rc->db, "main", "chunk_data",
						   "data", id, 0, &blob));
	if (!err && (uint64_t)sqlite3_blob_bytes(blob) != len) {
		doom(c, id, item_id, index, "has another length than its row");
		err = -EUCLEAN;
	}
	uint64_t base = index * c->chunk_size;
	char *dst = buf;
	for (size_t b = offset / CONTENT_BLOCK;
	     !err && n && b * CONTENT_BLOCK < offset + n; b++) {
		size_t bstart = b * CONTENT_BLOCK;
		size_t blen = len - bstart < CONTENT_BLOCK
				  ? (size_t)(len - bstart)
				  : CONTENT_BLOCK;
		/* Whole blocks land where the caller wants them; a block
		 * wanted in part goes through scratch to be checked whole. */
		bool whole = bstart >= offset && bstart + blen <= offset + n;
		unsigned char *p =
		    whole ? (unsigned char *)dst + (bstart - offset)
			  : rc->scratch;
		err = content_sqlite_err(
		    c, sqlite3_blob_read(blob, p, (int)blen, (int)bstart));
		if (err)
			break;
		if (!block_ok(c, base + bstart, p, blen,
			      folds + b * CONTENT_FOLD_LEN)) {
			doom(c, id, item_id, index, "failed its check");
			err = -EUCLEAN;
			break;
		}
		if (!whole) {
			size_t from = offset > bstart ? offset - bstart : 0;
			size_t to = bstart + blen < offset + n
					? blen
					: offset + n - bstart;
			memcpy(dst + (bstart + from - offset), p + from,
			       to - from);
		}
	}
	sqlite3_blob_close(blob);
	if (!err)
		mark_used(c, id);
out_row:
	sqlite3_reset(rc->find);
out_conn:
	end_read(c, rc);
	return err;
}

int content_scan(struct content *c, const char *item_id, const char *version,
		 content_scan_fn fn, void *ctx)
{
	int err;
	struct rconn *rc = begin_read(c, &err);

	if (!rc)
		return err;
	sqlite3_stmt *st = cache_sqlite_prepare(
	    rc->db, "content store",
	    "SELECT idx, len, fold FROM chunks WHERE item_id=?1 AND "
	    "version=?2",
	    &err);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, item_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *f = sqlite3_column_blob(st, 2);
		if (!f || sqlite3_column_bytes(st, 2) != CONTENT_FOLD_LEN)
			continue; /* not trusted: read as missing */
		err = fn(ctx, (uint64_t)sqlite3_column_int64(st, 0),
			 (uint64_t)sqlite3_column_int64(st, 1), f);
		if (err)
			break;
	}
	if (!err && r != SQLITE_DONE)
		err = content_sqlite_err(c, r);
	sqlite3_finalize(st);
out:
	end_read(c, rc);
	return err;
}

int content_file_get(struct content *c, const char *item_id,
		     const char *version, struct content_file *out)
{
	int err;
	struct rconn *rc = begin_read(c, &err);

	memset(out, 0, sizeof(*out));
	if (!rc)
		return err;
	sqlite3_stmt *st = cache_sqlite_prepare(
	    rc->db, "content store",
	    "SELECT size, verified, mismatches FROM files WHERE item_id=?1 AND "
	    "version=?2",
	    &err);
	if (st) {
		sqlite3_bind_text(st, 1, item_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
		int r = sqlite3_step(st);
		if (r == SQLITE_ROW) {
			out->size = (uint64_t)sqlite3_column_int64(st, 0);
			out->verified = sqlite3_column_int(st, 1);
			out->mismatches = sqlite3_column_int(st, 2);
		}
		err = r == SQLITE_ROW	 ? 0
		      : r == SQLITE_DONE ? -ENOENT
					 : content_sqlite_err(c, r);
		sqlite3_finalize(st);
	}
	end_read(c, rc);
	return err;
}
