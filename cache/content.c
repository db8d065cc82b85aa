/* SPDX-License-Identifier: MIT */
/*
 * The content store's life: opening (and deciding whether the file on disk
 * can be trusted), its sqlite settings, the writer and the pool of read
 * connections, starting empty, pins and counters. Reads and writes are in
 * content_rw.c.
 *
 * Settings, measured with bench/storebench.c (docs/BENCHMARKS.md):
 *  - a rollback journal (TRUNCATE) with synchronous=OFF. Chunk pages are
 *    appended or taken from the freelist, which sqlite does not journal, so
 *    a chunk costs about one write of its bytes (WAL wrote every byte
 *    twice and fsynced at checkpoints: 3-4x slower, 2x the CPU). A kill -9
 *    leaves a hot journal that the next open rolls back; the data the
 *    kernel had is not lost with the process. A power loss can lose or
 *    tear writes: the marker file below makes the next boot start empty.
 *  - 64 KiB pages (the largest) and secure_delete off (Debian builds
 *    sqlite with it on: every eviction would overwrite its chunks with
 *    zeros; the file stays 0600 like the rest of the cache).
 *  - no mmap: page faults made warm reads 2-3x slower than read(2).
 *
 * Trust: a marker file beside the database holds the boot id while the
 * store is open and is removed after a clean close (the database fsynced
 * first). A marker from another boot means the machine went down with the
 * store open: start empty. So does a file that is not a database, is
 * shorter than its header says, has another schema or chunk size, or that
 * sqlite finds corrupt; read checks (content_rw.c) catch the rest.
 */
#include "config.h"

#include "cache/content.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/log.h"
#include "cache/content_impl.h"
#include "cache/sqlite_util.h"

#define SCHEMA_VERSION 4

size_t content_folds_len(size_t len)
{
	return (len + CONTENT_BLOCK - 1) / CONTENT_BLOCK * CONTENT_FOLD_LEN;
}

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

static void boot_id(char out[64])
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	out[0] = 0;
	if (f) {
		if (!fgets(out, 64, f))
			out[0] = 0;
		fclose(f);
	}
	out[strcspn(out, "\n")] = 0;
}

/* Why the database file cannot be trusted, or NULL. */
static const char *distrust(struct content *c)
{
	char now[64], was[64] = "";
	unsigned char h[100];
	struct stat st;
	int fd;

	boot_id(now);
	fd = open(c->marker, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, was, sizeof(was) - 1);
		close(fd);
		was[n > 0 ? n : 0] = 0;
		if (strcmp(was, now) != 0)
			return "the machine restarted while it was open";
	}
	fd = open(c->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL; /* a new store */
	if (fstat(fd, &st) != 0 || st.st_size == 0) {
		close(fd);
		return NULL;
	}
	ssize_t n = read(fd, h, sizeof(h));
	close(fd);
	if (n != (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16) != 0)
		return "not a database";
	unsigned page = (unsigned)h[16] << 8 | h[17];
	page = page == 1 ? 65536 : page;
	uint32_t count = (uint32_t)h[28] << 24 | (uint32_t)h[29] << 16 |
			 (uint32_t)h[30] << 8 | h[31];
	bool count_valid = memcmp(h + 24, h + 92, 4) == 0;
	if (page < 512 || (page & (page - 1)) || st.st_size % page ||
	    (count_valid && (uint64_t)st.st_size < (uint64_t)count * page))
		return "truncated";
	return NULL;
}

static void remove_files(struct content *c)
{
	unlink(c->path);
	unlink(c->journal);
}

/* Records that the store is open, durably: a power loss from here until
 * the clean close leaves it behind. */
static void write_marker(struct content *c)
{
	char id[64];
	int fd =
	    open(c->marker,
		 O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

	boot_id(id);
	if (fd < 0)
		return;
	if (write(fd, id, strlen(id)) < 0 || fsync(fd) != 0)
		log_debug("content store marker: %s", strerror(errno));
	close(fd);
}

static int prepare_writer(struct content *c)
{
	int e = 0;
	struct {
		sqlite3_stmt **st;
		const char *sql;
	} list[] = {
	    {&c->st.old_len, "SELECT len FROM chunks WHERE item_id=?1 AND "
			     "version=?2 AND idx=?3"},
	    {&c->st.put_row,
	     "INSERT INTO chunks(item_id, version, idx, len, last_used, fold,"
	     " folds) VALUES(?1,?2,?3,?4,?5,?6,?7)"
	     " ON CONFLICT(item_id, version, idx) DO UPDATE"
	     " SET len=?4, last_used=?5, fold=?6, folds=?7 RETURNING id"},
	    {&c->st.put_data, "INSERT OR REPLACE INTO chunk_data(id, data)"
			      " VALUES(?1, zeroblob(?2))"},
	    {&c->st.touch, "UPDATE chunks SET last_used=?2 WHERE id=?1"},
	    {&c->st.del, "DELETE FROM chunks WHERE id=?1 RETURNING len"},
	    {&c->st.lru, "SELECT id, item_id FROM chunks ORDER BY last_used"},
	};
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]) && !e; i++)
		*list[i].st = cache_sqlite_prepare(c->db, "content store",
						   list[i].sql, &e);
	return e;
}

static void finalize_writer(struct content *c)
{
	sqlite3_stmt **all[] = {&c->st.old_len, &c->st.put_row, &c->st.put_data,
				&c->st.touch,	&c->st.del,	&c->st.lru};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		sqlite3_finalize(*all[i]);
		*all[i] = NULL;
	}
}

static int settings(sqlite3 *db, const char *extra)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
		 "PRAGMA page_size=%d; PRAGMA journal_mode=TRUNCATE;"
		 " PRAGMA synchronous=OFF; PRAGMA secure_delete=OFF;"
		 " PRAGMA mmap_size=0; %s",
		 CONTENT_PAGE_SIZE, extra);
	return cache_sqlite_exec(db, "content store", sql);
}

/* Creates the schema when the file is new; 1 when it is of another
 * schema or chunk size (why in *why), 0 when usable, or -errno. */
static int check_schema(struct content *c, const char **why)
{
	sqlite3_stmt *st;
	int e, version = 0;
	long long chunk = -1;

	st = cache_sqlite_prepare(c->db, "content store", "PRAGMA user_version",
				  &e);
	if (!st)
		return e;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return cache_sqlite_errno(rc);
	if (version == 0) {
		char sql[1024];
		snprintf(
		    sql, sizeof(sql),
		    "BEGIN;"
		    "DROP TABLE IF EXISTS chunks; DROP TABLE IF EXISTS files;"
		    "DROP TABLE IF EXISTS chunk_data; DROP TABLE IF EXISTS "
		    "info;"
		    "CREATE TABLE chunks(id INTEGER PRIMARY KEY,"
		    " item_id TEXT NOT NULL, version TEXT NOT NULL,"
		    " idx INTEGER NOT NULL, len INTEGER NOT NULL,"
		    " last_used INTEGER NOT NULL, fold BLOB NOT NULL,"
		    " folds BLOB NOT NULL, UNIQUE(item_id, version, idx));"
		    "CREATE INDEX chunks_lru ON chunks(last_used);"
		    "CREATE TABLE chunk_data(id INTEGER PRIMARY KEY,"
		    " data BLOB NOT NULL);"
		    "CREATE TRIGGER chunks_gone AFTER DELETE ON chunks BEGIN"
		    " DELETE FROM chunk_data WHERE id=old.id; END;"
		    "CREATE TABLE files("
		    " item_id TEXT NOT NULL, version TEXT NOT NULL,"
		    " size INTEGER NOT NULL, verified INTEGER NOT NULL DEFAULT "
		    "0,"
		    " mismatches INTEGER NOT NULL DEFAULT 0,"
		    " PRIMARY KEY(item_id, version));"
		    "CREATE TABLE info(key TEXT PRIMARY KEY, value);"
		    "INSERT INTO info VALUES('chunk_size', %llu);"
		    "PRAGMA user_version=%d;"
		    "COMMIT;",
		    (unsigned long long)c->chunk_size, SCHEMA_VERSION);
		return cache_sqlite_exec(c->db, "content store", sql);
	}
	if (version != SCHEMA_VERSION) {
		*why = "it was made by another version of spfs";
		return 1;
	}
	st = cache_sqlite_prepare(
	    c->db, "content store",
	    "SELECT value FROM info WHERE key='chunk_size'", &e);
	if (!st)
		return 1;
	if (sqlite3_step(st) == SQLITE_ROW)
		chunk = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (chunk != (long long)c->chunk_size) {
		*why = "the chunk size changed";
		return 1;
	}
	return 0;
}

/* Opens the writer on the file as it is: 0, 1 (not usable: *why), -errno. */
static int open_writer(struct content *c, const char **why)
{
	int e = cache_sqlite_open(c->path, "content store", &c->db);

	if (!e)
		e = settings(c->db, "PRAGMA cache_size=-4096;");
	if (!e)
		e = check_schema(c, why);
	if (e == 0) {
		/* Reads every chunk row: a damaged table shows here. */
		sqlite3_stmt *st = cache_sqlite_prepare(
		    c->db, "content store",
		    "SELECT COALESCE(SUM(len),0), COUNT(*), "
		    "COALESCE(MAX(last_used),0) FROM chunks",
		    &e);
		int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
		if (rc == SQLITE_ROW) {
			c->bytes = (uint64_t)sqlite3_column_int64(st, 0);
			c->chunks = (uint64_t)sqlite3_column_int64(st, 1);
			c->clock = (uint64_t)sqlite3_column_int64(st, 2);
		} else if (st) {
			e = cache_sqlite_errno(rc);
		}
		sqlite3_finalize(st);
	}
	if (e == 0)
		e = prepare_writer(c);
	if (e == -EUCLEAN || e == -EIO) {
		*why = "sqlite finds it damaged";
		e = 1;
	}
	return e;
}

static void close_readers_locked(struct content *c)
{
	pthread_mutex_lock(&c->pool_lock);
	while (c->pool) {
		struct rconn *rc = c->pool;
		c->pool = rc->next;
		sqlite3_finalize(rc->find);
		sqlite3_close_v2(rc->db);
		free(rc->scratch);
		free(rc);
		c->nreaders--;
	}
	pthread_mutex_unlock(&c->pool_lock);
}

static void close_writer(struct content *c)
{
	finalize_writer(c);
	if (c->db)
		sqlite3_close_v2(c->db);
	c->db = NULL;
}

int content_reset_locked(struct content *c, const char *reason)
{
	const char *why = NULL;
	int e;

	log_warn("content cache %s: %s; starting empty", c->path, reason);
	c->resets++;
	c->trusted = true; /* what is written from now on is ours */
	close_readers_locked(c);
	close_writer(c);
	remove_files(c);
	c->bytes = c->chunks = c->clock = 0;
	pthread_mutex_lock(&c->mark_lock);
	c->nmarks = c->ndoomed = 0;
	pthread_mutex_unlock(&c->mark_lock);
	atomic_store(&c->damaged, false);
	e = open_writer(c, &why);
	if (e == 1) {
		log_error("content cache %s: a new store is unusable (%s)",
			  c->path, why);
		e = -EIO;
	}
	return e;
}

int content_sqlite_err(struct content *c, int rc)
{
	int e = cache_sqlite_errno(rc);

	if (e == -EUCLEAN)
		atomic_store(&c->damaged, true);
	return e;
}

struct rconn *content_conn_get(struct content *c, int *err)
{
	struct rconn *rc;

	*err = 0;
	pthread_mutex_lock(&c->pool_lock);
	rc = c->pool;
	if (rc) {
		c->pool = rc->next;
		pthread_mutex_unlock(&c->pool_lock);
		return rc;
	}
	c->nreaders++;
	pthread_mutex_unlock(&c->pool_lock);

	rc = calloc(1, sizeof(*rc));
	if (!rc || !(rc->scratch = malloc(CONTENT_BLOCK))) {
		*err = -ENOMEM;
		goto fail;
	}
	*err = cache_sqlite_errno(
	    sqlite3_open_v2(c->path, &rc->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL));
	if (!*err)
		*err = settings(rc->db, "PRAGMA cache_size=-256;");
	if (!*err)
		rc->find = cache_sqlite_prepare(
		    rc->db, "content store",
		    "SELECT id, len, folds FROM chunks WHERE item_id=?1 AND "
		    "version=?2 AND idx=?3",
		    err);
	if (!*err) {
		sqlite3_busy_timeout(rc->db, 5000);
		return rc;
	}
fail:
	if (rc) {
		sqlite3_finalize(rc->find);
		sqlite3_close_v2(rc->db);
		free(rc->scratch);
		free(rc);
	}
	pthread_mutex_lock(&c->pool_lock);
	c->nreaders--;
	pthread_mutex_unlock(&c->pool_lock);
	return NULL;
}

void content_conn_put(struct content *c, struct rconn *rc)
{
	pthread_mutex_lock(&c->pool_lock);
	if (c->nreaders <= c->max_readers) {
		rc->next = c->pool;
		c->pool = rc;
		rc = NULL;
	} else {
		c->nreaders--; /* a burst's extra connection: closed */
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (rc) {
		sqlite3_finalize(rc->find);
		sqlite3_close_v2(rc->db);
		free(rc->scratch);
		free(rc);
	}
}

static char *with_suffix(const char *path, const char *suffix)
{
	size_t n = strlen(path), m = strlen(suffix);
	char *s = malloc(n + m + 1);

	if (s) {
		memcpy(s, path, n);
		memcpy(s + n, suffix, m + 1);
	}
	return s;
}

struct content *content_open(const struct content_config *cfg, int *err)
{
	struct content *c = calloc(1, sizeof(*c));
	const char *why = NULL;
	int e = -ENOMEM;

	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	pthread_rwlock_init(&c->io, NULL);
	pthread_mutex_init(&c->wlock, NULL);
	pthread_mutex_init(&c->pool_lock, NULL);
	pthread_mutex_init(&c->mark_lock, NULL);
	pthread_mutex_init(&c->pin_lock, NULL);
	c->max_bytes = cfg->max_bytes;
	c->chunk_size = cfg->chunk_size ? cfg->chunk_size : 4u << 20;
	c->max_readers = cfg->readers ? cfg->readers : 4;
	c->path = strdup(cfg->path);
	c->journal = with_suffix(cfg->path, "-journal");
	c->marker = with_suffix(cfg->path, ".open");
	if (!c->path || !c->journal || !c->marker)
		goto fail;
	size_t n = 0;
	while (cfg->neighbours && cfg->neighbours[n])
		n++;
	c->neighbours = calloc(n + 1, sizeof(char *));
	if (!c->neighbours)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (!(c->neighbours[i] = strdup(cfg->neighbours[i])))
			goto fail;
	c->reserve = volume_reserve(cfg->path);

	why = distrust(c);
	c->trusted = true;
	if (why) {
		log_warn("content cache %s: %s; starting empty", c->path, why);
		c->resets++;
		remove_files(c);
	}
	e = open_writer(c, &why);
	if (e == 1) {
		close_writer(c);
		e = content_reset_locked(c, why);
	}
	if (e)
		goto fail;
	write_marker(c);
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
	if (c->db) {
		content_evict(c); /* pending marks and dropped chunks */
		close_readers_locked(c);
		close_writer(c);
		if (c->trusted && !atomic_load(&c->damaged)) {
			/* Durable before the marker goes: a power loss after a
			 * clean unmount must not leave a torn store trusted. */
			int fd = open(c->path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				fsync(fd);
				close(fd);
			}
			unlink(c->marker);
		}
	}
	while (c->pins) {
		struct pin *p = c->pins;
		c->pins = p->next;
		free(p->item_id);
		free(p);
	}
	for (size_t i = 0; c->neighbours && c->neighbours[i]; i++)
		free(c->neighbours[i]);
	free(c->neighbours);
	pthread_rwlock_destroy(&c->io);
	pthread_mutex_destroy(&c->wlock);
	pthread_mutex_destroy(&c->pool_lock);
	pthread_mutex_destroy(&c->mark_lock);
	pthread_mutex_destroy(&c->pin_lock);
	free(c->path);
	free(c->journal);
	free(c->marker);
	free(c);
}

void content_pin(struct content *c, const char *item_id)
{
	pthread_mutex_lock(&c->pin_lock);
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
			pthread_mutex_unlock(&c->pin_lock);
			return;
		}
		p->next = c->pins;
		c->pins = p;
	}
	p->count++;
	pthread_mutex_unlock(&c->pin_lock);
}

void content_unpin(struct content *c, const char *item_id)
{
	pthread_mutex_lock(&c->pin_lock);
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
	pthread_mutex_unlock(&c->pin_lock);
}

bool content_pinned(struct content *c, const char *item_id)
{
	bool pinned = false;

	pthread_mutex_lock(&c->pin_lock);
	for (const struct pin *p = c->pins; p && !pinned; p = p->next)
		pinned = strcmp(p->item_id, item_id) == 0;
	pthread_mutex_unlock(&c->pin_lock);
	return pinned;
}

static uint64_t file_bytes(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

void content_get_stats(struct content *c, struct content_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->wlock);
	out->bytes = c->bytes;
	out->chunks = c->chunks;
	out->evicted = c->evicted;
	out->resets = c->resets;
	pthread_mutex_unlock(&c->wlock);
	out->damaged_chunks = atomic_load(&c->damaged_chunks);
	out->disk_bytes = file_bytes(c->path) + file_bytes(c->journal);
	for (size_t i = 0; c->neighbours[i]; i++)
		out->disk_bytes += file_bytes(c->neighbours[i]);
}
