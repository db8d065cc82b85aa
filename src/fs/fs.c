/* SPDX-License-Identifier: MIT */
/*
 * Filesystem semantics. Design:
 *  - metadata reads (lookup, getattr, readdir of a listed folder) touch only
 *    sqlite: zero Graph requests;
 *  - a folder is listed once with /children (all pages), stored in one
 *    transaction (upsert + sweep of what vanished), then kept current by delta;
 *  - stale-if-error: a failed listing of a folder already listed serves the
 *    cached entries and warns once; only a never-listed folder fails (EIO);
 *  - the delta thread (sync.c) applies changes by item id and invalidates
 *    exactly the kernel entries and inodes they affect; file content is in
 *    open.c, counters and probes in stats.c, struct fs in fs_impl.h.
 * Threads: FUSE workers call fs_*; one delta thread. fs->list_lock serialises
 * listings (NEEDSWORK: per-folder single flight would let unrelated listings
 * run in parallel). Lock order: list_lock, then the store's lock. No lock is
 * held while calling the notify callbacks.
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

struct store_listing {
	struct fs *fs;
	uint64_t folder;
	struct listing *l;
	uint64_t *stale; /* children before the listing, to sweep */
	size_t nstale, capstale;
};

static int note_child(void *ctx, const struct meta_item *it)
{
	struct store_listing *s = ctx;

	if (s->nstale == s->capstale) {
		size_t cap = s->capstale ? s->capstale * 2 : 64;
		uint64_t *p = realloc(s->stale, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->stale = p;
		s->capstale = cap;
	}
	s->stale[s->nstale++] = it->ino;
	return 0;
}

static int store_listing(struct meta *m, void *ctx)
{
	struct store_listing *s = ctx;
	int err = meta_children(m, s->folder, note_child, s);

	for (size_t i = 0; !err && i < s->l->n; i++) {
		struct meta_item mi;
		uint64_t ino;
		fs_meta_from_graph(&s->l->items[i], s->folder, &mi);
		err = meta_upsert(m, &mi, &ino);
		if (!err && !s->l->items[i].is_folder)
			reader_note_url(s->fs->reader, s->l->items[i].id,
					s->l->items[i].download_url);
		for (size_t k = 0; !err && k < s->nstale; k++)
			if (s->stale[k] == ino)
				s->stale[k] = 0;
	}
	for (size_t k = 0; !err && k < s->nstale; k++)
		if (s->stale[k])
			err = meta_delete_subtree(m, s->stale[k]);
	if (!err)
		err = meta_set_listed(m, s->folder, (int64_t)time(NULL));
	return err;
}

/* Makes sure folder (store inode) has a listing we may serve. */
static int ensure_listed(struct fs *fs, uint64_t folder)
{
	struct meta_item it;
	struct listing l = {0};
	int err;

	pthread_mutex_lock(&fs->list_lock);
	err = meta_get(fs->m, folder, &it);
	if (err)
		goto out;
	if (!it.is_dir) {
		err = -ENOTDIR;
		goto out_item;
	}
	time_t now = time(NULL);
	/* listed_at 1 marks a stale listing (after a delta resync). */
	if (it.listed_at > 1 && (atomic_load(&fs->delta_healthy) ||
				 now - it.listed_at < fs->cfg.list_ttl))
		goto out_item;

	err = graph_children(fs->g, fs->drive_id, it.item_id,
			     fs_listing_collect, &l);
	if (!err) {
		struct store_listing s = {.fs = fs, .folder = folder, .l = &l};
		err = meta_batch(fs->m, store_listing, &s);
		free(s.stale);
		atomic_store(&fs->offline_warned, 0);
		if (err) {
			/* The metadata store cannot take it (a full volume):
			 * the previous listing, if any, beats an error. */
			log_warn("listing '%s' not stored: %s",
				 it.name[0] ? it.name : "/", strerror(-err));
			err = it.listed_at > 0 ? 0
			      : err == -ENOMEM ? err
					       : -EIO;
		}
	} else if (it.listed_at > 0) {
		if (!atomic_exchange(&fs->offline_warned, 1))
			log_warn("Graph is unreachable or refusing (%s): "
				 "serving the cached tree",
				 strerror(-err));
		err = 0;
	} else {
		log_warn("listing '%s' failed: %s", it.name[0] ? it.name : "/",
			 strerror(-err));
		if (err != -ENOENT && err != -EACCES && err != -ENOMEM)
			err = -EIO;
	}
	for (size_t i = 0; i < l.n; i++)
		graph_item_release(&l.items[i]);
	free(l.items);
out_item:
	meta_item_release(&it);
out:
	pthread_mutex_unlock(&fs->list_lock);
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
