/* SPDX-License-Identifier: MIT */
/*
 * sqlite metadata store. Inode numbers are the items table's INTEGER PRIMARY
 * KEY with AUTOINCREMENT, so a number is never reused for another item, even
 * after deletes, and survives remounts. sqlite result codes map to errno
 * here and nowhere else.
 *
 * Lock order: m->lock, then sqlite's own. Never held across network I/O
 * (callers fetch first, store after).
 *
 * The tree is what the service says, and the service may lie: every walk
 * over parent links is a recursive query with UNION, which visits each
 * inode at most once, so a parent cycle (planted, or from an older
 * version) ends the walk instead of running it forever under the lock;
 * meta_is_ancestor() lets callers refuse a move that would close one. Two
 * children with one name are both kept; lookups and listings show the
 * newest (then the greatest item id), so the choice is stable.
 */
#include "config.h"

#include "cache/meta.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "cache/sqlite_util.h"

#define SCHEMA_VERSION "1"

struct meta {
	sqlite3 *db;
	pthread_mutex_t lock; /* recursive: meta_batch's fn calls back in */
	char *drive_id;
};

void meta_item_release(struct meta_item *it)
{
	free(it->item_id);
	free(it->name);
	free(it->etag);
	free(it->ctag);
	free(it->quickxorhash);
	free(it->web_url);
	free(it->modified_by);
	memset(it, 0, sizeof(*it));
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS info(key TEXT PRIMARY KEY, value TEXT NOT "
    "NULL);"
    "CREATE TABLE IF NOT EXISTS items("
    " ino INTEGER PRIMARY KEY AUTOINCREMENT,"
    " drive_id TEXT NOT NULL,"
    " item_id TEXT NOT NULL,"
    " parent_ino INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " is_dir INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    " ctime_s INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,"
    " etag TEXT, ctag TEXT, qxh TEXT, web_url TEXT, modified_by TEXT,"
    " listed_at INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(drive_id, item_id));"
    "CREATE INDEX IF NOT EXISTS items_by_parent ON items(parent_ino, name);";

/* A row is shown unless a sibling of the same name is newer (or as new,
 * with a greater item id): one entry per name, the same one every time. */
#define NEWEST_OF_NAME                                                         \
	" AND NOT EXISTS (SELECT 1 FROM items o WHERE"                         \
	" o.parent_ino=items.parent_ino AND o.name=items.name AND"             \
	" (o.mtime_s>items.mtime_s OR (o.mtime_s=items.mtime_s AND"            \
	" (o.mtime_ns>items.mtime_ns OR (o.mtime_ns=items.mtime_ns AND"        \
	" o.item_id>items.item_id)))))"

/* Inodes seen by the listing of a folder in progress (per connection, so
 * gone after a crash). */
static const char listing_schema[] =
    "CREATE TEMP TABLE IF NOT EXISTS listing_seen(folder INTEGER NOT NULL,"
    " ino INTEGER NOT NULL, PRIMARY KEY(folder, ino)) WITHOUT ROWID;";

static int kv_get_locked(struct meta *m, const char *key, char **value);
static int kv_set_locked(struct meta *m, const char *key, const char *value);

struct meta *meta_open(const char *path, const char *drive_id, int *err)
{
	struct meta *m = calloc(1, sizeof(*m));
	pthread_mutexattr_t attr;
	int e;

	if (!m || !(m->drive_id = strdup(drive_id))) {
		free(m);
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&m->lock, &attr);
	pthread_mutexattr_destroy(&attr);

	e = cache_sqlite_open(path, "metadata store", &m->db);
	if (e)
		goto fail;
	e = cache_sqlite_exec(
	    m->db, "metadata store",
	    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
	    /* A small WAL: the volume may be small and shared with content. */
	    " PRAGMA wal_autocheckpoint=256; PRAGMA "
	    "journal_size_limit=1048576;");
	e = e ? e : cache_sqlite_exec(m->db, "metadata store", schema);
	e = e ? e : cache_sqlite_exec(m->db, "metadata store", listing_schema);
	if (e)
		goto fail;

	char *have = NULL;
	e = kv_get_locked(m, "drive_id", &have);
	if (e == -ENOENT) {
		e = kv_set_locked(m, "drive_id", drive_id);
		e = e ? e : kv_set_locked(m, "schema", SCHEMA_VERSION);
	} else if (!e && strcmp(have, drive_id) != 0) {
		log_error("metadata store %s belongs to drive %s, not %s", path,
			  have, drive_id);
		e = -EINVAL;
	}
	free(have);
	if (e)
		goto fail;
	/* No chmod of the side files: sqlite creates them with the database
	 * file's mode (0600), and a chmod by name would follow a link. */
	*err = 0;
	return m;
fail:
	meta_close(m);
	*err = e;
	return NULL;
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	if (m->db)
		sqlite3_close_v2(m->db);
	pthread_mutex_destroy(&m->lock);
	free(m->drive_id);
	free(m);
}

int meta_batch(struct meta *m, int (*fn)(struct meta *m, void *ctx), void *ctx)
{
	int err;

	pthread_mutex_lock(&m->lock);
	err = cache_sqlite_exec(m->db, "metadata store", "BEGIN IMMEDIATE");
	if (!err) {
		err = fn(m, ctx);
		int e2 = cache_sqlite_exec(m->db, "metadata store",
					   err ? "ROLLBACK" : "COMMIT");
		if (!err)
			err = e2;
	}
	pthread_mutex_unlock(&m->lock);
	return err;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? strdup((const char *)t) : NULL;
}

#define ITEM_COLUMNS                                                           \
	"ino, parent_ino, item_id, name, is_dir, size, mtime_s, mtime_ns, "    \
	"ctime_s, ctime_ns, etag, ctag, qxh, web_url, modified_by, listed_at"

static int row_to_item(sqlite3_stmt *st, struct meta_item *out)
{
	memset(out, 0, sizeof(*out));
	out->ino = (uint64_t)sqlite3_column_int64(st, 0);
	out->parent_ino = (uint64_t)sqlite3_column_int64(st, 1);
	out->item_id = col_text(st, 2);
	out->name = col_text(st, 3);
	out->is_dir = sqlite3_column_int(st, 4);
	out->size = sqlite3_column_int64(st, 5);
	out->mtime.tv_sec = sqlite3_column_int64(st, 6);
	out->mtime.tv_nsec = sqlite3_column_int64(st, 7);
	out->ctime.tv_sec = sqlite3_column_int64(st, 8);
	out->ctime.tv_nsec = sqlite3_column_int64(st, 9);
	out->etag = col_text(st, 10);
	out->ctag = col_text(st, 11);
	out->quickxorhash = col_text(st, 12);
	out->web_url = col_text(st, 13);
	out->modified_by = col_text(st, 14);
	out->listed_at = sqlite3_column_int64(st, 15);
	if (!out->item_id || !out->name) {
		meta_item_release(out);
		return -ENOMEM;
	}
	return 0;
}

int meta_upsert(struct meta *m, const struct meta_item *in, uint64_t *ino)
{
	int err;

	pthread_mutex_lock(&m->lock);
	sqlite3_stmt *st = cache_sqlite_prepare(
	    m->db, "metadata store",
	    "INSERT INTO items(drive_id, item_id, parent_ino, name, is_dir, "
	    "size, mtime_s, mtime_ns,"
	    " ctime_s, ctime_ns, etag, ctag, qxh, web_url, modified_by)"
	    " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"
	    " ON CONFLICT(drive_id, item_id) DO UPDATE SET parent_ino=?3, "
	    "name=?4, is_dir=?5,"
	    " size=?6, mtime_s=?7, mtime_ns=?8, ctime_s=?9, ctime_ns=?10, "
	    "etag=?11, ctag=?12,"
	    " qxh=?13, web_url=?14, modified_by=?15"
	    " RETURNING ino",
	    &err);
	if (st) {
		bind_text(st, 1, m->drive_id);
		bind_text(st, 2, in->item_id);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)in->parent_ino);
		bind_text(st, 4, in->name);
		sqlite3_bind_int(st, 5, in->is_dir);
		sqlite3_bind_int64(st, 6, in->size);
		sqlite3_bind_int64(st, 7, in->mtime.tv_sec);
		sqlite3_bind_int64(st, 8, in->mtime.tv_nsec);
		sqlite3_bind_int64(st, 9, in->ctime.tv_sec);
		sqlite3_bind_int64(st, 10, in->ctime.tv_nsec);
		bind_text(st, 11, in->etag);
		bind_text(st, 12, in->ctag);
		bind_text(st, 13, in->quickxorhash);
		bind_text(st, 14, in->web_url);
		bind_text(st, 15, in->modified_by);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && ino)
			*ino = (uint64_t)sqlite3_column_int64(st, 0);
		err = rc == SQLITE_ROW ? 0 : cache_sqlite_errno(rc);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->lock);
	return err;
}

/* Runs a one-row query; fills out via row_to_item, or -ENOENT. */
static int query_item(struct meta *m, const char *sql, sqlite3_int64 a,
		      const char *b, struct meta_item *out)
{
	int err;

	pthread_mutex_lock(&m->lock);
	sqlite3_stmt *st =
	    cache_sqlite_prepare(m->db, "metadata store", sql, &err);
	if (st) {
		sqlite3_bind_int64(st, 1, a);
		if (b)
			bind_text(st, 2, b);
		int rc = sqlite3_step(st);
		err = rc == SQLITE_ROW
			  ? row_to_item(st, out)
			  : (rc == SQLITE_DONE ? -ENOENT
					       : cache_sqlite_errno(rc));
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->lock);
	return err;
}

int meta_get(struct meta *m, uint64_t ino, struct meta_item *out)
{
	return query_item(m, "SELECT " ITEM_COLUMNS " FROM items WHERE ino=?1",
			  (sqlite3_int64)ino, NULL, out);
}

int meta_lookup(struct meta *m, uint64_t parent_ino, const char *name,
		struct meta_item *out)
{
	return query_item(
	    m,
	    "SELECT " ITEM_COLUMNS
	    " FROM items WHERE parent_ino=?1 AND name=?2" NEWEST_OF_NAME,
	    (sqlite3_int64)parent_ino, name, out);
}

int meta_ino_of(struct meta *m, const char *item_id, uint64_t *ino)
{
	int err;

	pthread_mutex_lock(&m->lock);
	sqlite3_stmt *st = cache_sqlite_prepare(
	    m->db, "metadata store",
	    "SELECT ino FROM items WHERE drive_id=?1 AND item_id=?2", &err);
	if (st) {
		bind_text(st, 1, m->drive_id);
		bind_text(st, 2, item_id);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*ino = (uint64_t)sqlite3_column_int64(st, 0);
		err = rc == SQLITE_ROW
			  ? 0
			  : (rc == SQLITE_DONE ? -ENOENT
					       : cache_sqlite_errno(rc));
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->lock);
	return err;
}

int meta_children(struct meta *m, uint64_t parent_ino,
		  int (*fn)(void *ctx, const struct meta_item *it), void *ctx)
{
	return meta_children_after(m, parent_ino, NULL, -1, fn, ctx);
}

int meta_children_after(struct meta *m, uint64_t parent_ino, const char *after,
			int limit,
			int (*fn)(void *ctx, const struct meta_item *it),
			void *ctx)
{
	int err;

	pthread_mutex_lock(&m->lock);
	sqlite3_stmt *st = cache_sqlite_prepare(
	    m->db, "metadata store",
	    "SELECT " ITEM_COLUMNS " FROM items"
	    " WHERE parent_ino=?1 AND (?2 IS NULL OR name>?2)" NEWEST_OF_NAME
	    " ORDER BY name LIMIT ?3",
	    &err);
	if (st) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)parent_ino);
		if (after)
			sqlite3_bind_text(st, 2, after, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 2);
		sqlite3_bind_int(st, 3, limit);
		int rc;
		while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct meta_item it;
			err = row_to_item(st, &it);
			if (!err) {
				err = fn(ctx, &it);
				meta_item_release(&it);
			}
		}
		if (!err && rc != SQLITE_DONE)
			err = cache_sqlite_errno(rc);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->lock);
	return err;
}

static int exec_int(struct meta *m, const char *sql, sqlite3_int64 a,
		    sqlite3_int64 b)
{
	int err;

	pthread_mutex_lock(&m->lock);
	sqlite3_stmt *st =
	    cache_sqlite_prepare(m->db, "metadata store", sql, &err);
	if (st) {
		sqlite3_bind_int64(st, 1, a);
		sqlite3_bind_int64(st, 2, b);
		err = cache_sqlite_errno(sqlite3_step(st));
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->lock);
	return err;
}

int meta_set_listed(struct meta *m, uint64_t ino, int64_t when)
{
	return exec_int(m, "UPDATE items SET listed_at=?2 WHERE ino=?1",
			(sqlite3_int64)ino, when);
}

int meta_unlist_all(struct meta *m)
{
	/* 1 = listed long ago: relisted when used, still served on failure. */
	return exec_int(
	    m, "UPDATE items SET listed_at=1 WHERE listed_at>?1 AND ?2=?2", 0,
	    0);
}

/* UNION, not UNION ALL: each inode once, so a cycle ends the walk. */
int meta_delete_subtree(struct meta *m, uint64_t ino)
{
	return exec_int(
	    m,
	    "WITH RECURSIVE sub(i) AS (SELECT ?1 UNION"
	    " SELECT items.ino FROM items JOIN sub ON items.parent_ino=sub.i"
	    " WHERE ?2=?2)"
	    " DELETE FROM items WHERE ino IN (SELECT i FROM sub)",
	    (sqlite3_int64)ino, 0);
}

int meta_is_ancestor(struct meta *m, uint64_t ancestor, uint64_t ino)
{
	int err;

	if (ancestor == ino)
		return 1;
	pthread_mutex_lock(&m->lock);
	sqlite3_stmt *st = cache_sqlite_prepare(
	    m->db, "metadata store",
	    "WITH RECURSIVE up(i) AS (SELECT ?2 UNION"
	    " SELECT items.parent_ino FROM items JOIN up ON items.ino=up.i)"
	    " SELECT 1 FROM up WHERE i=?1 LIMIT 1",
	    &err);
	if (st) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)ancestor);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)ino);
		int rc = sqlite3_step(st);
		err = rc == SQLITE_ROW	  ? 1
		      : rc == SQLITE_DONE ? 0
					  : cache_sqlite_errno(rc);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->lock);
	return err;
}

int meta_listing_seen(struct meta *m, uint64_t folder, uint64_t ino)
{
	return exec_int(m,
			"INSERT OR IGNORE INTO temp.listing_seen(folder, ino)"
			" VALUES(?1, ?2)",
			(sqlite3_int64)folder, (sqlite3_int64)ino);
}

int meta_listing_sweep(struct meta *m, uint64_t folder)
{
	/* The folder itself is never swept, even through a planted cycle. */
	int err = exec_int(
	    m,
	    "WITH RECURSIVE sub(i) AS (SELECT ino FROM items"
	    " WHERE parent_ino=?1 AND ino NOT IN"
	    " (SELECT ino FROM temp.listing_seen WHERE folder=?1) UNION"
	    " SELECT items.ino FROM items JOIN sub ON items.parent_ino=sub.i)"
	    " DELETE FROM items WHERE ino IN (SELECT i FROM sub) AND ino!=?1"
	    " AND ?2=?2",
	    (sqlite3_int64)folder, 0);

	return err ? err : meta_listing_forget(m, folder);
}

int meta_listing_forget(struct meta *m, uint64_t folder)
{
	return exec_int(
	    m, "DELETE FROM temp.listing_seen WHERE folder=?1 AND ?2=?2",
	    (sqlite3_int64)folder, 0);
}

static int kv_get_locked(struct meta *m, const char *key, char **value)
{
	int err;
	sqlite3_stmt *st =
	    cache_sqlite_prepare(m->db, "metadata store",
				 "SELECT value FROM info WHERE key=?1", &err);

	if (!st)
		return err;
	bind_text(st, 1, key);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*value = col_text(st, 0);
		err = *value ? 0 : -ENOMEM;
	} else {
		err = rc == SQLITE_DONE ? -ENOENT : cache_sqlite_errno(rc);
	}
	sqlite3_finalize(st);
	return err;
}

static int kv_set_locked(struct meta *m, const char *key, const char *value)
{
	int err;
	sqlite3_stmt *st =
	    cache_sqlite_prepare(m->db, "metadata store",
				 "INSERT INTO info(key, value) VALUES(?1, ?2)"
				 " ON CONFLICT(key) DO UPDATE SET value=?2",
				 &err);

	if (!st)
		return err;
	bind_text(st, 1, key);
	bind_text(st, 2, value);
	err = cache_sqlite_errno(sqlite3_step(st));
	sqlite3_finalize(st);
	return err;
}

int meta_kv_get(struct meta *m, const char *key, char **value)
{
	pthread_mutex_lock(&m->lock);
	int err = kv_get_locked(m, key, value);
	pthread_mutex_unlock(&m->lock);
	return err;
}

int meta_kv_set(struct meta *m, const char *key, const char *value)
{
	pthread_mutex_lock(&m->lock);
	int err = kv_set_locked(m, key, value);
	pthread_mutex_unlock(&m->lock);
	return err;
}
