/* SPDX-License-Identifier: MIT */
/*
 * Filesystem semantics. Design:
 *  - metadata reads (lookup, getattr, readdir of a listed folder) touch only
 *    sqlite: zero Graph requests;
 *  - a folder is listed once with /children, each page stored as it
 *    arrives (one transaction a page, so memory stays one page whatever the
 *    folder's size), then what vanished is swept and the folder marked
 *    listed; then it is kept current by delta;
 *  - an item that is the folder itself or one above it is refused: the
 *    store stays a tree, whatever the service says;
 *  - stale-if-error: a failed listing of a folder already listed serves the
 *    cached entries and warns once; only a never-listed folder fails (EIO);
 *  - the delta thread (sync.c) applies changes by item id and invalidates
 *    exactly the kernel entries and inodes they affect; file content is in
 *    open.c, counters and probes in stats.c, struct fs in fs_impl.h.
 * Threads: FUSE workers call fs_*; one delta thread. Listings are single
 * flight per folder: a second caller for a folder being listed waits for
 * that listing, other folders list in parallel (Graph's page slots bound
 * their memory). fs->list_lock guards only the table of flights, never the
 * network. Lock order: list_lock, then the store's lock. No lock is held
 * while calling the notify callbacks.
 */
#include "config.h"

#include "fs/fs.h"
#include "fs/fs_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "cache/content.h"
#include "cache/meta.h"
#include "fs/item_map.h"
#include "fs/reader.h"
#include "fs/sheets_view.h"
#include "graph/graph.h"
#include "graph/item.h"

static void attr_from(struct fs *fs, const struct meta_item *it,
		      struct fs_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = to_kernel(fs, it->ino);
	a->mode = it->is_dir ? (S_IFDIR | (0555 & ~fs->cfg.umask))
			     : (S_IFREG | (0444 & ~fs->cfg.umask));
	a->size = (uint64_t)it->size;
	a->mtime = it->mtime;
	a->ctime = it->mtime; /* ctime: last change we know of */
	a->nlink = it->is_dir ? 2 : 1;
	a->uid = fs->cfg.uid;
	a->gid = fs->cfg.gid;
	if (!it->is_dir) {
		pthread_mutex_lock(&fs->open_lock);
		struct open_ino *o = fs_open_find_locked(fs, a->ino);
		if (o && o->count)
			a->size = o->size;
		pthread_mutex_unlock(&fs->open_lock);
	}
}

/* The key of a file's content: cTag changes exactly when the bytes do;

 * without one (delta omits it), the eTag, which changes at least then. */
const char *fs_content_version(const struct meta_item *it)
{
	if (it->ctag && *it->ctag)
		return it->ctag;
	return it->etag && *it->etag ? it->etag : NULL;
}

/* Items spfs does not show: OneNote packages, malware-flagged files. */
bool fs_item_hidden(const struct graph_item *gi)
{
	if (gi->is_package || gi->is_malware) {
		log_debug("hiding '%s' (%s)", gi->name ? gi->name : "?",
			  gi->is_package ? "OneNote package"
					 : "flagged as malware");
		return true;
	}
	return false;
}

struct fs *fs_new(struct graph *g, struct meta *m, struct content *store,
		  const char *drive_id, const char *root_id,
		  const struct fs_config *cfg, int *err)
{
	struct fs *fs = calloc(1, sizeof(*fs));

	if (!fs || !(fs->drive_id = strdup(drive_id)) ||
	    !(fs->root_id = strdup(root_id))) {
		if (fs)
			free(fs->drive_id);
		free(fs);
		*err = -ENOMEM;
		return NULL;
	}
	fs->g = g;
	fs->m = m;
	fs->store = store;
	fs->cfg = *cfg;
	if (fs->cfg.list_ttl <= 0)
		fs->cfg.list_ttl = 300;
	pthread_mutex_init(&fs->list_lock, NULL);
	pthread_cond_init(&fs->list_done, NULL);
	pthread_mutex_init(&fs->sync_lock, NULL);
	pthread_cond_init(&fs->sync_cond, NULL);
	pthread_mutex_init(&fs->quota_lock, NULL);
	pthread_mutex_init(&fs->seq_lock, NULL);
	pthread_mutex_init(&fs->open_lock, NULL);
	pthread_mutex_init(&fs->probe_lock, NULL);
	pthread_cond_init(&fs->probe_cond, NULL);
	if (fs->cfg.liveness_timeout <= 0)
		fs->cfg.liveness_timeout = 30;
	struct reader_config rc = {.chunk_size = cfg->chunk_size,
				   .readahead = cfg->readahead,
				   .small_file = cfg->small_file,
				   .read_timeout = cfg->read_timeout};
	fs->reader = reader_new(g, store, drive_id, &rc, err);
	if (!fs->reader) {
		fs_free(fs);
		return NULL;
	}

	/* The mounted folder must be in the store; fetch it unless cached
	 * (a mount whose Graph is down still works from an existing cache). */
	*err = meta_ino_of(m, root_id, &fs->root_ino);
	if (*err == -ENOENT) {
		struct graph_item gi;
		struct meta_item mi;
		*err = graph_item_get(g, drive_id, root_id, &gi);
		if (!*err) {
			fs_meta_from_graph(&gi, 0, &mi);
			mi.name = (char *)"";
			*err = meta_upsert(m, &mi, &fs->root_ino);
			graph_item_release(&gi);
		}
	}
	if (!*err && cfg->sheets)
		fs->sheets = sheets_view_new(fs, err);
	if (*err) {
		fs_free(fs);
		return NULL;
	}
	return fs;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	fs_stop_sync(fs);
	sheets_view_free(fs->sheets);
	reader_free(fs->reader);
	pthread_mutex_destroy(&fs->list_lock);
	pthread_cond_destroy(&fs->list_done);
	pthread_mutex_destroy(&fs->sync_lock);
	pthread_cond_destroy(&fs->sync_cond);
	pthread_mutex_destroy(&fs->quota_lock);
	pthread_mutex_destroy(&fs->seq_lock);
	free(fs->seq_name);
	pthread_mutex_destroy(&fs->open_lock);
	pthread_mutex_destroy(&fs->probe_lock);
	pthread_cond_destroy(&fs->probe_cond);
	free(fs->open);
	free(fs->drive_id);
	free(fs->root_id);
	free(fs);
}

void fs_set_notify(struct fs *fs, const struct fs_notify *n)
{
	fs->notify = *n;
}

/* ---- listing ------------------------------------------------------------- */

int fs_listing_collect(void *ctx, const struct graph_item *gi)
{
	struct listing *l = ctx;

	if (fs_item_hidden(gi))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct graph_item *p = realloc(l->items, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->items = p;
		l->cap = cap;
	}
	/* Take a deep copy: the walk releases its item after the call. */
	struct graph_item *c = &l->items[l->n];
	memset(c, 0, sizeof(*c));
	*c = *gi;
	char **s[] = {&c->id,	   &c->name,	    &c->parent_id,
		      &c->etag,	   &c->ctag,	    &c->quickxorhash,
		      &c->web_url, &c->modified_by, &c->download_url};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		if (*s[i] && !(*s[i] = strdup(*s[i]))) {
			for (size_t k = 0; k < i; k++)
				free(*s[k]);
			for (size_t k = i + 1; k < sizeof(s) / sizeof(s[0]);
			     k++)
				*s[k] = NULL;
			return -ENOMEM;
		}
	}
	l->n++;
	return 0;
}

void fs_listing_clear(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		graph_item_release(&l->items[i]);
	l->n = 0;
}

int fs_check_placement(struct fs *fs, const struct graph_item *gi,
		       uint64_t parent, const char *what)
{
	uint64_t ino;
	struct meta_item other;

	if (meta_ino_of(fs->m, gi->id, &ino) == 0) {
		int r = meta_is_ancestor(fs->m, ino, parent);
		if (r)
			return r < 0 ? r : 1;
	}
	/* Two children of one name: the store shows the newest; say so
	 * when the second one arrives. */
	if (meta_lookup(fs->m, parent, gi->name, &other) == 0) {
		if (strcmp(other.item_id, gi->id) != 0)
			log_warn("%s: two items named '%s' (ids %s and %s) in "
				 "one folder; showing the newest",
				 what, gi->name, other.item_id, gi->id);
		meta_item_release(&other);
	}
	return 0;
}

/* A listing being stored page by page. */
struct list_stream {
	struct fs *fs;
	uint64_t folder;
	const char *name; /* the folder's, for log lines */
	struct listing page;
	int store_err; /* the store refused a page: not Graph's fault */
};

static int store_page_items(struct meta *m, void *ctx)
{
	struct list_stream *s = ctx;
	int err = 0;

	for (size_t i = 0; !err && i < s->page.n; i++) {
		const struct graph_item *gi = &s->page.items[i];
		struct meta_item mi;
		uint64_t ino;
		err = fs_check_placement(s->fs, gi, s->folder, "list folder");
		if (err == 1) {
			log_warn("list folder '%s': skipped '%s' (%s), which "
				 "is this folder or one above it: storing it "
				 "here would close a loop",
				 s->name, gi->name, gi->id);
			err = 0;
			continue;
		}
		if (err)
			break;
		fs_meta_from_graph(gi, s->folder, &mi);
		err = meta_upsert(m, &mi, &ino);
		err = err ? err : meta_listing_seen(m, s->folder, ino);
		if (!err && !gi->is_folder)
			reader_note_url(s->fs->reader, gi->id,
					gi->download_url);
	}
	return err;
}

static int collect_child(void *ctx, const struct graph_item *gi)
{
	struct list_stream *s = ctx;

	return fs_listing_collect(&s->page, gi);
}

/* After each page: its items into the store, then dropped from memory. */
static int store_page(void *ctx)
{
	struct list_stream *s = ctx;
	int err = meta_batch(s->fs->m, store_page_items, s);

	fs_listing_clear(&s->page);
	s->store_err = err;
	return err;
}

static int finish_listing(struct meta *m, void *ctx)
{
	struct list_stream *s = ctx;
	int err = meta_listing_sweep(m, s->folder);

	return err ? err : meta_set_listed(m, s->folder, (int64_t)time(NULL));
}

/* Lists folder from Graph into the store; what ensure_listed's caller
 * gets (stale-if-error for a folder listed before). */
static int list_folder(struct fs *fs, uint64_t folder,
		       const struct meta_item *it)
{
	struct list_stream s = {
	    .fs = fs, .folder = folder, .name = it->name[0] ? it->name : "/"};
	int err = graph_children_paged(fs->g, fs->drive_id, it->item_id,
				       collect_child, store_page, &s);

	fs_listing_clear(&s.page);
	free(s.page.items);
	if (!err)
		err = s.store_err = meta_batch(fs->m, finish_listing, &s);
	if (err)
		meta_listing_forget(fs->m, folder);
	if (!err) {
		atomic_store(&fs->offline_warned, 0);
	} else if (s.store_err) {
		/* The metadata store cannot take it (a full volume): the
		 * previous listing, if any, beats an error. */
		log_warn("listing '%s' not stored: %s", s.name, strerror(-err));
		err = it->listed_at > 0 ? 0 : err == -ENOMEM ? err : -EIO;
	} else if (it->listed_at > 0) {
		if (!atomic_exchange(&fs->offline_warned, 1))
			log_warn("Graph is unreachable or refusing (%s): "
				 "serving the cached tree",
				 strerror(-err));
		err = 0;
	} else {
		log_warn("listing '%s' failed: %s", s.name, strerror(-err));
		if (err != -ENOENT && err != -EACCES && err != -ENOMEM)
			err = -EIO;
	}
	return err;
}

/* A listing in progress: later callers for the same folder wait for it
 * (single flight); other folders list at the same time. */
struct list_flight {
	uint64_t folder;
	int err;
	bool done;
	unsigned waiters;
	struct list_flight *next;
};

static bool listing_fresh(struct fs *fs, const struct meta_item *it)
{
	/* listed_at 1 marks a stale listing (after a delta resync). */
	return it->listed_at > 1 &&
	       (atomic_load(&fs->delta_healthy) ||
		time(NULL) - it->listed_at < fs->cfg.list_ttl);
}

/* Makes sure folder (store inode) has a listing we may serve. No lock is
 * held across the network: list_lock only guards the flights. */
static int ensure_listed(struct fs *fs, uint64_t folder)
{
	struct meta_item it;
	struct list_flight *f;
	int err = meta_get(fs->m, folder, &it);

	if (err)
		return err;
	if (!it.is_dir) {
		err = -ENOTDIR;
		goto out;
	}
	if (listing_fresh(fs, &it))
		goto out;

	pthread_mutex_lock(&fs->list_lock);
	for (f = fs->flights; f && f->folder != folder; f = f->next)
		;
	if (f) {
		f->waiters++;
		while (!f->done)
			pthread_cond_wait(&fs->list_done, &fs->list_lock);
		err = f->err;
		if (--f->waiters == 0) {
			struct list_flight **pp = &fs->flights;
			while (*pp != f)
				pp = &(*pp)->next;
			*pp = f->next;
			free(f);
		}
		pthread_mutex_unlock(&fs->list_lock);
		goto out;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		pthread_mutex_unlock(&fs->list_lock);
		err = -ENOMEM;
		goto out;
	}
	f->folder = folder;
	f->next = fs->flights;
	fs->flights = f;
	pthread_mutex_unlock(&fs->list_lock);

	err = list_folder(fs, folder, &it);

	pthread_mutex_lock(&fs->list_lock);
	f->err = err;
	f->done = true;
	pthread_cond_broadcast(&fs->list_done);
	if (f->waiters == 0) {
		struct list_flight **pp = &fs->flights;
		while (*pp != f)
			pp = &(*pp)->next;
		*pp = f->next;
		free(f);
	}
	pthread_mutex_unlock(&fs->list_lock);
out:
	meta_item_release(&it);
	return err;
}

int fs_lookup(struct fs *fs, uint64_t parent, const char *name,
	      struct fs_attr *out)
{
	struct meta_item it;
	uint64_t p = to_store(fs, parent);
	int err;

	if (sheets_view_owns(parent))
		return fs->sheets
			   ? sheets_view_lookup(fs->sheets, parent, name, out)
			   : -ENOENT;
	err = ensure_listed(fs, p);
	if (err)
		return err;
	err = meta_lookup(fs->m, p, name, &it);
	if (err == -ENOENT && fs->sheets)
		return sheets_view_lookup(fs->sheets, p, name, out);
	if (err)
		return err;
	attr_from(fs, &it, out);
	meta_item_release(&it);
	return 0;
}

int fs_getattr(struct fs *fs, uint64_t ino, struct fs_attr *out)
{
	struct meta_item it;
	int err;

	if (sheets_view_owns(ino))
		return fs->sheets ? sheets_view_getattr(fs->sheets, ino, out)
				  : -ENOENT;
	err = meta_get(fs->m, to_store(fs, ino), &it);
	if (err)
		return err;
	attr_from(fs, &it, out);
	meta_item_release(&it);
	return 0;
}

struct readdir_ctx {
	struct fs *fs;
	int (*fn)(void *ctx, const struct fs_dirent *e);
	void *ctx;
};

static int readdir_one(void *ctx, const struct meta_item *it)
{
	struct readdir_ctx *r = ctx;
	struct fs_dirent e = {.name = it->name};

	/* A store written by an older spfs may hold names no directory can
	 * show ("a/b", "..", 1,000 bytes): never to getdents. */
	if (!graph_name_valid(it->name, strlen(it->name)))
		return 0;
	attr_from(r->fs, it, &e.attr);
	return r->fn(r->ctx, &e);
}

int fs_readdir(struct fs *fs, uint64_t ino,
	       int (*fn)(void *ctx, const struct fs_dirent *e), void *ctx)
{
	uint64_t folder = to_store(fs, ino);
	struct readdir_ctx r = {fs, fn, ctx};
	int err;

	if (sheets_view_owns(ino))
		return fs->sheets
			   ? sheets_view_readdir(fs->sheets, ino, fn, ctx)
			   : -ENOENT;
	err = ensure_listed(fs, folder);
	err = err ? err : meta_children(fs->m, folder, readdir_one, &r);
	if (!err && fs->sheets)
		err = sheets_view_readdir_folders(fs->sheets, folder, fn, ctx);
	return err;
}

/* ---- xattrs and statfs ------------------------------------------------------
 */

static const char *const xattr_names[] = {
    "user.sharepoint.id",     "user.sharepoint.etag",
    "user.sharepoint.ctag",   "user.sharepoint.quickxorhash",
    "user.sharepoint.weburl", "user.sharepoint.modified_by",
};

static const char *xattr_value(const struct meta_item *it, size_t i)
{
	const char *v[] = {it->item_id,	     it->etag,	  it->ctag,
			   it->quickxorhash, it->web_url, it->modified_by};
	return v[i];
}

#define STATS_XATTR "user.spfs.stats"

int fs_getxattr(struct fs *fs, uint64_t ino, const char *name, char *buf,
		size_t size)
{
	struct meta_item it;
	int err;

	if (ino == FS_ROOT_INO && strcmp(name, STATS_XATTR) == 0) {
		/* Counters move between the size query and the read: leave
		 * room. */
		int n = fs_stats_json(fs, buf, size);
		return size == 0 && n >= 0 ? n + 512 : n;
	}
	if (sheets_view_owns(ino))
		return -ENODATA;
	err = meta_get(fs->m, to_store(fs, ino), &it);

	if (err)
		return err;
	err = -ENODATA;
	for (size_t i = 0; i < sizeof(xattr_names) / sizeof(xattr_names[0]);
	     i++) {
		const char *v = xattr_value(&it, i);
		if (strcmp(name, xattr_names[i]) != 0 || !v)
			continue;
		size_t n = strlen(v);
		if (size && size < n)
			err = -ERANGE;
		else {
			if (size)
				memcpy(buf, v, n);
			err = (int)n;
		}
		break;
	}
	meta_item_release(&it);
	return err;
}

int fs_listxattr(struct fs *fs, uint64_t ino, char *buf, size_t size)
{
	struct meta_item it;
	size_t total = 0;
	int err;

	if (sheets_view_owns(ino))
		return 0;
	err = meta_get(fs->m, to_store(fs, ino), &it);
	if (err)
		return err;
	for (size_t i = 0; i < sizeof(xattr_names) / sizeof(xattr_names[0]);
	     i++) {
		if (!xattr_value(&it, i))
			continue;
		size_t n = strlen(xattr_names[i]) + 1;
		if (size && total + n <= size)
			memcpy(buf + total, xattr_names[i], n);
		total += n;
	}
	meta_item_release(&it);
	if (ino == FS_ROOT_INO) {
		size_t n = sizeof(STATS_XATTR);
		if (size && total + n <= size)
			memcpy(buf + total, STATS_XATTR, n);
		total += n;
	}
	if (size && total > size)
		return -ERANGE;
	return (int)total;
}

int fs_statfs(struct fs *fs, struct statvfs *out)
{
	memset(out, 0, sizeof(*out));
	out->f_bsize = 4096;
	out->f_frsize = 4096;
	out->f_namemax = 255;
	/* The library's quota, asked at most once a minute; the last answer
	 * (or zeros) when Graph cannot be reached. */
	pthread_mutex_lock(&fs->quota_lock);
	time_t now = time(NULL);
	if (now - fs->quota_at >= 60) {
		uint64_t t, u;
		fs->quota_at = now;
		pthread_mutex_unlock(&fs->quota_lock);
		int err = graph_drive_quota(fs->g, fs->drive_id, &t, &u);
		pthread_mutex_lock(&fs->quota_lock);
		if (!err) {
			fs->quota_total = t;
			fs->quota_used = u;
		}
	}
	uint64_t total = fs->quota_total, used = fs->quota_used;
	pthread_mutex_unlock(&fs->quota_lock);
	out->f_blocks = total / 4096;
	out->f_bfree = total > used ? (total - used) / 4096 : 0;
	out->f_bavail = out->f_bfree;
	out->f_flag = ST_RDONLY | ST_NOSUID;
	return 0;
}
