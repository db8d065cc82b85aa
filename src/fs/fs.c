/* SPDX-License-Identifier: MIT */
/*
 * Filesystem semantics. Design:
 *  - metadata reads (lookup, getattr, readdir of a listed folder) touch only
 *    sqlite: zero Graph requests;
 *  - a folder is listed once with /children (all pages), stored in one
 *    transaction (upsert + sweep of what vanished), then kept current by delta;
 *  - stale-if-error: a failed listing of a folder already listed serves the
 *    cached entries and warns once; only a never-listed folder fails (EIO);
 *  - the delta thread applies changes by item id and invalidates exactly the
 *    kernel entries and inodes they affect.
 * Threads: FUSE workers call fs_*; one delta thread. fs->list_lock serialises
 * listings (NEEDSWORK: per-folder single flight would let unrelated listings
 * run in parallel). Lock order: list_lock, then the store's lock. No lock is
 * held while calling the notify callbacks.
 */
#include "config.h"

#include "fs/fs.h"

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
#include "graph/graph.h"
#include "graph/item.h"

struct open_ino {
	uint64_t ino; /* the kernel's */
	unsigned count;
	uint64_t size;	    /* of the version opened last */
	bool pending_inval; /* a change arrived while open */
};

struct fs {
	struct graph *g;
	struct meta *m;
	struct content *store; /* NULL: cache=off */
	struct reader *reader;
	char *drive_id;
	char *root_id;
	uint64_t root_ino; /* the store's inode of the mounted folder */
	struct fs_config cfg;
	struct fs_notify notify;
	pthread_mutex_t list_lock;
	pthread_t sync_thread;
	bool sync_running;
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cond;
	bool stop;
	atomic_bool delta_healthy; /* last delta round succeeded */
	atomic_llong delta_ok_at;  /* epoch s of the last good delta round */
	atomic_bool serving;	   /* mounted: between start and stop */
	atomic_int offline_warned;
	/* Files open through the kernel: their attributes keep the opened
	 * version's size, and page invalidations wait until they close, so a
	 * reader never sees another version's length or pages. */
	pthread_mutex_t open_lock;
	struct open_ino *open;
	size_t nopen, capopen;
	/* The last file opened, to notice a folder read in name order (cp -r,
	 * scripts looping over files) and prefetch its next small files. */
	pthread_mutex_t seq_lock;
	uint64_t seq_parent;
	char *seq_name;
	/* statfs: quota cached for a minute */
	pthread_mutex_t quota_lock;
	time_t quota_at;
	uint64_t quota_total, quota_used;
};

/* The kernel's inode 1 is the mounted folder; the store's inode 1 (if any
 * other item has it) is shown as the folder's store inode: a swap. */
static uint64_t to_store(const struct fs *fs, uint64_t ino)
{
	if (ino == FS_ROOT_INO)
		return fs->root_ino;
	return ino == fs->root_ino ? FS_ROOT_INO : ino;
}

static uint64_t to_kernel(const struct fs *fs, uint64_t ino)
{
	if (ino == fs->root_ino)
		return FS_ROOT_INO;
	return ino == FS_ROOT_INO ? fs->root_ino : ino;
}

static struct open_ino *open_find_locked(struct fs *fs, uint64_t ino)
{
	for (size_t i = 0; i < fs->nopen; i++)
		if (fs->open[i].ino == ino)
			return &fs->open[i];
	return NULL;
}

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
		struct open_ino *o = open_find_locked(fs, a->ino);
		if (o && o->count)
			a->size = o->size;
		pthread_mutex_unlock(&fs->open_lock);
	}
}

/* The key of a file's content: cTag changes exactly when the bytes do;
 * without one (delta omits it), the eTag, which changes at least then. */
static const char *content_version(const struct meta_item *it)
{
	if (it->ctag && *it->ctag)
		return it->ctag;
	return it->etag && *it->etag ? it->etag : NULL;
}

/* Items spfs does not show: OneNote packages, malware-flagged files. */
static bool hidden(const struct graph_item *gi)
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
	reader_free(fs->reader);
	pthread_mutex_destroy(&fs->list_lock);
	pthread_mutex_destroy(&fs->sync_lock);
	pthread_cond_destroy(&fs->sync_cond);
	pthread_mutex_destroy(&fs->quota_lock);
	pthread_mutex_destroy(&fs->seq_lock);
	free(fs->seq_name);
	pthread_mutex_destroy(&fs->open_lock);
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

struct listing {
	struct graph_item *items;
	size_t n, cap;
};

static int collect(void *ctx, const struct graph_item *gi)
{
	struct listing *l = ctx;

	if (hidden(gi))
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

	err = graph_children(fs->g, fs->drive_id, it.item_id, collect, &l);
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
	int err = ensure_listed(fs, p);

	if (err)
		return err;
	err = meta_lookup(fs->m, p, name, &it);
	if (err)
		return err;
	attr_from(fs, &it, out);
	meta_item_release(&it);
	return 0;
}

int fs_getattr(struct fs *fs, uint64_t ino, struct fs_attr *out)
{
	struct meta_item it;
	int err = meta_get(fs->m, to_store(fs, ino), &it);

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
	int err = ensure_listed(fs, folder);

	return err ? err : meta_children(fs->m, folder, readdir_one, &r);
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
	int err = meta_get(fs->m, to_store(fs, ino), &it);

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

/* ---- file content ----------------------------------------------------- */

struct fs_file {
	struct fs *fs;
	struct reader_handle *h;
	uint64_t ino; /* the kernel's */
};

static int open_note(struct fs *fs, uint64_t ino, uint64_t size)
{
	int err = 0;

	pthread_mutex_lock(&fs->open_lock);
	struct open_ino *o = open_find_locked(fs, ino);
	if (!o) {
		if (fs->nopen == fs->capopen) {
			size_t cap = fs->capopen ? fs->capopen * 2 : 16;
			struct open_ino *p =
			    realloc(fs->open, cap * sizeof(*p));
			if (!p) {
				err = -ENOMEM;
				goto out;
			}
			fs->open = p;
			fs->capopen = cap;
		}
		o = &fs->open[fs->nopen++];
		memset(o, 0, sizeof(*o));
		o->ino = ino;
	}
	o->count++;
	o->size = size;
out:
	pthread_mutex_unlock(&fs->open_lock);
	return err;
}

static void open_forget(struct fs *fs, uint64_t ino)
{
	pthread_mutex_lock(&fs->open_lock);
	struct open_ino *o = open_find_locked(fs, ino);
	if (o && o->count)
		o->count--;
	if (o && !o->count && !o->pending_inval)
		*o = fs->open[--fs->nopen];
	pthread_mutex_unlock(&fs->open_lock);
}

/* Invalidations that waited for files to close (delta thread). */
static void flush_deferred_inval(struct fs *fs)
{
	for (;;) {
		uint64_t ino = 0;
		pthread_mutex_lock(&fs->open_lock);
		for (size_t i = 0; i < fs->nopen; i++) {
			if (!fs->open[i].count && fs->open[i].pending_inval) {
				ino = fs->open[i].ino;
				fs->open[i] = fs->open[--fs->nopen];
				break;
			}
		}
		pthread_mutex_unlock(&fs->open_lock);
		if (!ino)
			return;
		if (fs->notify.inval_inode)
			fs->notify.inval_inode(fs->notify.ctx, ino);
	}
}

/* True (and remembered) when ino is open: its invalidation must wait. */
static bool defer_inval(struct fs *fs, uint64_t ino)
{
	bool open = false;

	pthread_mutex_lock(&fs->open_lock);
	struct open_ino *o = open_find_locked(fs, ino);
	if (o && o->count) {
		o->pending_inval = true;
		open = true;
	}
	pthread_mutex_unlock(&fs->open_lock);
	return open;
}

#define PREFETCH_FILES 8

struct prefetch_list {
	struct meta_item items[PREFETCH_FILES];
	size_t n;
};

static int collect_sibling(void *ctx, const struct meta_item *it)
{
	struct prefetch_list *l = ctx;
	struct meta_item *dst = &l->items[l->n];

	if (it->is_dir || !content_version(it) || l->n == PREFETCH_FILES)
		return 0;
	memset(dst, 0, sizeof(*dst));
	dst->item_id = strdup(it->item_id);
	dst->etag = it->etag ? strdup(it->etag) : NULL;
	dst->ctag = it->ctag ? strdup(it->ctag) : NULL;
	dst->quickxorhash = it->quickxorhash ? strdup(it->quickxorhash) : NULL;
	dst->size = it->size;
	if (!dst->item_id || (it->etag && !dst->etag) ||
	    (it->ctag && !dst->ctag) ||
	    (it->quickxorhash && !dst->quickxorhash)) {
		meta_item_release(dst);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

/* Opens in name order within a folder (the second in a row is enough)
 * prefetch the next few small files: with per-request latency, a script
 * copying a folder then waits for one file at a time at most. */
static void prefetch_siblings(struct fs *fs, const struct meta_item *it)
{
	struct prefetch_list l = {.n = 0};
	bool in_order;

	pthread_mutex_lock(&fs->seq_lock);
	in_order = fs->seq_name && fs->seq_parent == it->parent_ino &&
		   strcmp(fs->seq_name, it->name) < 0;
	free(fs->seq_name);
	fs->seq_name = strdup(it->name);
	fs->seq_parent = it->parent_ino;
	pthread_mutex_unlock(&fs->seq_lock);
	if (!in_order || !fs->store)
		return;
	meta_children_after(fs->m, it->parent_ino, it->name, PREFETCH_FILES,
			    collect_sibling, &l);
	struct reader_file files[PREFETCH_FILES];
	for (size_t i = 0; i < l.n; i++)
		files[i] = (struct reader_file){
		    .item_id = l.items[i].item_id,
		    .version = content_version(&l.items[i]),
		    .quickxorhash = l.items[i].quickxorhash,
		    .size =
			l.items[i].size < 0 ? 0 : (uint64_t)l.items[i].size};
	reader_prefetch(fs->reader, files, l.n);
	for (size_t i = 0; i < l.n; i++)
		meta_item_release(&l.items[i]);
}

int fs_open(struct fs *fs, uint64_t ino, struct fs_file **out, int *keep_cache,
	    int *size_changed)
{
	struct meta_item it;
	uint64_t store_ino = to_store(fs, ino);
	int err = meta_get(fs->m, store_ino, &it);

	*out = NULL;
	*keep_cache = 0;
	*size_changed = 0;
	if (err)
		return err;
	const char *version = content_version(&it);
	if (it.is_dir) {
		err = -EISDIR;
		goto out;
	}
	if (!version) {
		log_warn("'%s': no eTag or cTag to tell versions apart; "
			 "refusing to read it",
			 it.name);
		err = -EIO;
		goto out;
	}
	struct fs_file *f = calloc(1, sizeof(*f));
	if (!f) {
		err = -ENOMEM;
		goto out;
	}
	struct reader_file rf = {.item_id = it.item_id,
				 .version = version,
				 .quickxorhash = it.quickxorhash,
				 .size = it.size < 0 ? 0 : (uint64_t)it.size};
	struct reader_open_result res;
	err = reader_open(fs->reader, &rf, &f->h, &res);
	if (err) {
		free(f);
		goto out;
	}
	if (res.size != (uint64_t)it.size) {
		/* The served size wins: getattr says it from now on. */
		uint64_t same;
		it.size = (int64_t)res.size;
		meta_upsert(fs->m, &it, &same);
	}
	/* The first open of a version in this mount: the kernel may hold
	 * another version's size; have it ask again. */
	*size_changed = !res.keep_cache || res.size_changed;
	*keep_cache = res.keep_cache && !res.size_changed;
	f->fs = fs;
	f->ino = ino;
	err = open_note(fs, ino, res.size);
	if (err) {
		reader_release(f->h);
		free(f);
		goto out;
	}
	*out = f;
	prefetch_siblings(fs, &it);
out:
	meta_item_release(&it);
	return err;
}

ssize_t fs_read(struct fs_file *f, char *buf, size_t size, uint64_t off)
{
	return reader_read(f->h, buf, size, off);
}

void fs_release(struct fs_file *f)
{
	if (!f)
		return;
	reader_release(f->h);
	open_forget(f->fs, f->ino);
	free(f);
}

int fs_stats_json(struct fs *fs, char *out, size_t size)
{
	struct reader_stats rs;
	struct graph_stats gs;
	struct content_stats cs = {0};
	struct buf b;
	int n;

	reader_get_stats(fs->reader, &rs);
	graph_get_stats(fs->g, &gs);
	if (fs->store)
		content_get_stats(fs->store, &cs);
	buf_init(&b, 8192);
	int err = buf_appendf(
	    &b,
	    "{\"graph_requests\":%lu,\"graph_throttles\":%lu,"
	    "\"graph_retries\":%lu,\"graph_auth_retries\":%lu,"
	    "\"graph_throttled_seconds\":%.1f,"
	    "\"token_requests\":%lu,\"token_failures\":%lu,"
	    "\"token_expires_at\":%lld,"
	    "\"downloads\":%llu,\"download_bytes\":%llu,"
	    "\"download_retries\":%llu,\"url_refreshes\":%llu,"
	    "\"cache_hits\":%llu,\"cache_misses\":%llu,"
	    "\"chunks_stored\":%llu,\"readahead_chunks\":%llu,"
	    "\"prefetched_files\":%llu,"
	    "\"hash_verified\":%llu,\"hash_mismatches\":%llu,"
	    "\"size_corrections\":%llu,\"store_errors\":%llu,"
	    "\"open_files\":%llu,\"memory_bytes\":%llu,"
	    "\"cache_enabled\":%s,\"cache_bytes\":%llu,"
	    "\"cache_chunks\":%llu,\"cache_cap\":%llu,"
	    "\"evicted_chunks\":%llu,\"delta_healthy\":%s}\n",
	    gs.requests, gs.throttles, gs.retries, gs.auth_retries,
	    gs.throttled_seconds, gs.token_requests, gs.token_failures,
	    gs.token_expires_at, (unsigned long long)rs.downloads,
	    (unsigned long long)rs.download_bytes,
	    (unsigned long long)rs.download_retries,
	    (unsigned long long)rs.url_refreshes,
	    (unsigned long long)rs.cache_hits,
	    (unsigned long long)rs.cache_misses,
	    (unsigned long long)rs.chunks_stored,
	    (unsigned long long)rs.readahead_chunks,
	    (unsigned long long)rs.prefetched_files,
	    (unsigned long long)rs.hash_verified,
	    (unsigned long long)rs.hash_mismatches,
	    (unsigned long long)rs.size_corrections,
	    (unsigned long long)rs.store_errors,
	    (unsigned long long)rs.open_files,
	    (unsigned long long)rs.memory_bytes, fs->store ? "true" : "false",
	    (unsigned long long)cs.bytes, (unsigned long long)cs.chunks,
	    (unsigned long long)fs->cfg.cache_size,
	    (unsigned long long)cs.evicted,
	    atomic_load(&fs->delta_healthy) ? "true" : "false");
	if (err) {
		buf_release(&b);
		return err;
	}
	n = (int)b.len;
	if (size && (size_t)n > size)
		n = -ERANGE;
	else if (size)
		memcpy(out, b.data, (size_t)n);
	buf_release(&b);
	return n;
}

static int metric(struct buf *b, const char *name, const char *type,
		  const char *help, double value)
{
	return buf_appendf(
	    b, "# HELP spfs_%s %s\n# TYPE spfs_%s %s\nspfs_%s %.17g\n", name,
	    help, name, type, name, value);
}

static void route_metric(void *ctx, const char *route, const char *status,
			 unsigned long n)
{
	buf_appendf(
	    ctx, "spfs_graph_requests_total{route=\"%s\",status=\"%s\"} %lu\n",
	    route, status, n);
}

bool fs_ready(struct fs *fs)
{
	struct graph_stats gs;

	graph_get_stats(fs->g, &gs);
	return atomic_load(&fs->serving) && gs.token_expires_at > time(NULL);
}

int fs_metrics_text(struct fs *fs, struct buf *b)
{
	struct reader_stats rs;
	struct graph_stats gs;
	struct content_stats cs = {0};
	long long now = (long long)time(NULL);
	long long delta_ok = atomic_load(&fs->delta_ok_at);
	int err = 0;

	reader_get_stats(fs->reader, &rs);
	graph_get_stats(fs->g, &gs);
	if (fs->store)
		content_get_stats(fs->store, &cs);
	err |=
	    buf_append_str(b, "# HELP spfs_graph_requests_total HTTP requests "
			      "to Graph and download URLs, by route and "
			      "status class.\n# TYPE spfs_graph_requests_total "
			      "counter\n");
	graph_route_counts(fs->g, route_metric, b);
	const struct {
		const char *name, *type, *help;
		double value;
	} list[] = {
	    {"ready", "gauge", "1 when mounted with a valid access token.",
	     fs_ready(fs)},
	    {"graph_throttles_total", "counter", "429/503 answers received.",
	     (double)gs.throttles},
	    {"graph_retry_after_seconds_total", "counter",
	     "Seconds waited because of Retry-After.", gs.throttled_seconds},
	    {"graph_retries_total", "counter",
	     "Graph requests retried after 5xx or network errors.",
	     (double)gs.retries},
	    {"graph_auth_retries_total", "counter",
	     "401s answered by a token refresh and one retry.",
	     (double)gs.auth_retries},
	    {"token_requests_total", "counter",
	     "Requests to the token endpoint (first token and refreshes).",
	     (double)gs.token_requests},
	    {"token_failures_total", "counter", "Failed token requests.",
	     (double)gs.token_failures},
	    {"token_expiry_seconds", "gauge",
	     "Seconds until the current access token expires.",
	     gs.token_expires_at ? (double)(gs.token_expires_at - now) : 0},
	    {"downloads_total", "counter", "Requests to download URLs.",
	     (double)rs.downloads},
	    {"download_bytes_total", "counter", "File bytes downloaded.",
	     (double)rs.download_bytes},
	    {"download_retries_total", "counter",
	     "Download requests resumed or retried.",
	     (double)rs.download_retries},
	    {"download_url_refreshes_total", "counter",
	     "Download URLs asked of Graph again (expired or refused).",
	     (double)rs.url_refreshes},
	    {"prefetched_files_total", "counter",
	     "Small files fetched ahead of their open (folders read in order).",
	     (double)rs.prefetched_files},
	    {"cache_hits_total", "counter", "Chunk reads served by the cache.",
	     (double)rs.cache_hits},
	    {"cache_misses_total", "counter",
	     "Chunks fetched over the network.", (double)rs.cache_misses},
	    {"cache_bytes", "gauge", "Bytes in the content cache.",
	     (double)cs.bytes},
	    {"cache_chunks", "gauge", "Chunks in the content cache.",
	     (double)cs.chunks},
	    {"cache_capacity_bytes", "gauge", "The content cache's cap.",
	     fs->store ? (double)fs->cfg.cache_size : 0},
	    {"cache_evictions_total", "counter", "Chunks evicted.",
	     (double)cs.evicted},
	    {"cache_store_errors_total", "counter",
	     "Chunks the cache could not store (served from memory).",
	     (double)rs.store_errors},
	    {"hash_verified_total", "counter",
	     "Files whose bytes matched SharePoint's quickXorHash.",
	     (double)rs.hash_verified},
	    {"hash_mismatches_total", "counter",
	     "Downloads that did not match SharePoint's quickXorHash.",
	     (double)rs.hash_mismatches},
	    {"size_corrections_total", "counter",
	     "Files whose served length differed from the listed size.",
	     (double)rs.size_corrections},
	    {"open_files", "gauge", "Files open through the mount.",
	     (double)rs.open_files},
	    {"memory_chunk_bytes", "gauge", "Chunk bytes held in memory.",
	     (double)rs.memory_bytes},
	    {"delta_healthy", "gauge", "1 when the last change poll succeeded.",
	     atomic_load(&fs->delta_healthy)},
	    {"delta_lag_seconds", "gauge",
	     "Seconds since the last successful change poll (-1: none yet).",
	     delta_ok ? (double)(now - delta_ok) : -1},
	};
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]) && !err; i++)
		err = metric(b, list[i].name, list[i].type, list[i].help,
			     list[i].value);
	return err;
}

/* ---- delta
 * -------------------------------------------------------------------- */

struct inval {
	uint64_t parent; /* 0: inode only */
	char *name;
	uint64_t ino;
};

struct delta_round {
	struct fs *fs;
	struct inval *inval;
	size_t ninval, capinval;
	struct graph_item *items;
	size_t nitems, capitems;
};

static int add_inval(struct delta_round *d, uint64_t parent, const char *name,
		     uint64_t ino)
{
	if (d->ninval == d->capinval) {
		size_t cap = d->capinval ? d->capinval * 2 : 64;
		struct inval *p = realloc(d->inval, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		d->inval = p;
		d->capinval = cap;
	}
	struct inval *v = &d->inval[d->ninval];
	v->parent = parent;
	v->ino = ino;
	v->name = name ? strdup(name) : NULL;
	if (name && !v->name)
		return -ENOMEM;
	d->ninval++;
	return 0;
}

static int delta_collect(void *ctx, const struct graph_item *gi)
{
	struct delta_round *d = ctx;
	struct listing l = {d->items, d->nitems, d->capitems};
	int err = collect(&l, gi);

	d->items = l.items;
	d->nitems = l.n;
	d->capitems = l.cap;
	return err;
}

/* Applies one item of a delta page inside the store transaction. */
static int apply_one(struct delta_round *d, const struct graph_item *gi)
{
	struct fs *fs = d->fs;
	struct meta *m = fs->m;
	uint64_t ino = 0, parent = 0;
	struct meta_item old;
	int have = meta_ino_of(m, gi->id, &ino) == 0;
	int err = 0;

	if (have && (err = meta_get(m, ino, &old)))
		return err;
	if (gi->deleted) {
		if (have && ino != fs->root_ino) {
			err = add_inval(d, old.parent_ino, old.name, ino);
			err = err ? err : meta_delete_subtree(m, ino);
			if (!old.is_dir)
				reader_forget(fs->reader, gi->id, NULL);
		}
		goto out;
	}
	if (gi->is_root || (have && ino == fs->root_ino)) {
		if (have) {
			struct meta_item mi;
			fs_meta_from_graph(gi, old.parent_ino, &mi);
			mi.name = old.name;
			err = meta_upsert(m, &mi, &ino);
			err = err ? err : add_inval(d, 0, NULL, ino);
		}
		goto out;
	}
	struct meta_item pi;
	int parent_known = gi->parent_id &&
			   meta_ino_of(m, gi->parent_id, &parent) == 0 &&
			   meta_get(m, parent, &pi) == 0;
	int parent_listed = parent_known && pi.listed_at > 0;
	if (parent_known)
		meta_item_release(&pi);

	if (!parent_listed) {
		/* Moved out of what we keep, or never seen: forget it. */
		if (have) {
			err = add_inval(d, old.parent_ino, old.name, ino);
			err = err ? err : meta_delete_subtree(m, ino);
		}
		goto out;
	}
	if (hidden(gi))
		goto out;
	struct meta_item mi;
	fs_meta_from_graph(gi, parent, &mi);
	/* Delta leaves out cTag; the same hash and size is the same content
	 * version, so the cached bytes stay valid. */
	if (have && !gi->is_folder && !gi->ctag && old.ctag &&
	    gi->quickxorhash && old.quickxorhash &&
	    strcmp(gi->quickxorhash, old.quickxorhash) == 0 &&
	    gi->size == old.size)
		mi.ctag = old.ctag;
	err = meta_upsert(m, &mi, &ino);
	if (!err && !gi->is_folder) {
		const char *now = content_version(&mi);
		if (have && now && strcmp(content_version(&old), now) != 0)
			reader_forget(fs->reader, gi->id, now);
		reader_note_url(fs->reader, gi->id, gi->download_url);
	}
	if (!err && have &&
	    (old.parent_ino != parent || strcmp(old.name, gi->name) != 0))
		err = add_inval(d, old.parent_ino, old.name, 0);
	/* The new name may be cached as a negative entry. */
	err = err ? err : add_inval(d, parent, gi->name, 0);
	err = err ? err : add_inval(d, 0, NULL, ino);
out:
	if (have)
		meta_item_release(&old);
	return err;
}

static int apply_round(struct meta *m, void *ctx)
{
	struct delta_round *d = ctx;
	int err = 0;

	(void)m;
	for (size_t i = 0; !err && i < d->nitems; i++)
		err = apply_one(d, &d->items[i]);
	return err;
}

static void notify_all(struct fs *fs, struct delta_round *d)
{
	for (size_t i = 0; i < d->ninval; i++) {
		struct inval *v = &d->inval[i];
		if (v->name && fs->notify.inval_entry)
			fs->notify.inval_entry(
			    fs->notify.ctx, to_kernel(fs, v->parent), v->name);
		if (v->ino && fs->notify.inval_inode &&
		    !defer_inval(fs, to_kernel(fs, v->ino)))
			fs->notify.inval_inode(fs->notify.ctx,
					       to_kernel(fs, v->ino));
		free(v->name);
	}
}

static void round_release(struct delta_round *d)
{
	for (size_t i = 0; i < d->nitems; i++)
		graph_item_release(&d->items[i]);
	free(d->items);
	free(d->inval);
	memset(d, 0, sizeof(*d));
}

/* One poll: fetch the delta pages, apply them, store the new link. */
static int delta_once(struct fs *fs)
{
	char *link = NULL, *next = NULL, *resync = NULL;
	struct delta_round d = {.fs = fs};
	int err;

	flush_deferred_inval(fs);
	if (meta_kv_get(fs->m, "delta_link", &link) == -ENOENT)
		link = NULL;
	err = graph_delta(fs->g, fs->drive_id, link, delta_collect, &d, &next,
			  &resync);
	if (err == -ESTALE) {
		/* 410: our token is gone. Re-enumerate from the Location (or
		 * from now on), and relist folders lazily; readers keep the
		 * cached tree meanwhile. */
		log_warn("delta: resync required; re-reading folders as they "
			 "are used");
		round_release(&d);
		d.fs = fs;
		free(next);
		next = NULL;
		err = graph_delta(fs->g, fs->drive_id, NULL, delta_collect, &d,
				  &next, &resync);
		if (!err) {
			err = meta_unlist_all(fs->m);
			err = err ? err : add_inval(&d, 0, NULL, fs->root_ino);
		}
	}
	if (!err) {
		err = meta_batch(fs->m, apply_round, &d);
		if (!err)
			err = meta_kv_set(fs->m, "delta_link", next);
	}
	if (!err)
		notify_all(fs, &d);
	else
		for (size_t i = 0; i < d.ninval; i++)
			free(d.inval[i].name);
	round_release(&d);
	free(link);
	free(next);
	free(resync);
	return err;
}

static void *sync_main(void *arg)
{
	struct fs *fs = arg;
	int warned = 0;

	pthread_mutex_lock(&fs->sync_lock);
	while (!fs->stop) {
		pthread_mutex_unlock(&fs->sync_lock);
		/* A failing streak is warned of once (below, and by whatever
		 * the first failed round logged): an endless or broken feed
		 * must not write the same lines every poll. */
		log_demote_warnings(warned);
		int err = delta_once(fs);
		log_demote_warnings(false);
		atomic_store(&fs->delta_healthy, err == 0);
		if (!err)
			atomic_store(&fs->delta_ok_at, (long long)time(NULL));
		if (err && !warned) {
			log_warn(
			    "delta: %s; serving the cached tree and retrying",
			    strerror(-err));
			warned = 1;
		} else if (!err && warned) {
			log_info("delta: recovered");
			warned = 0;
		}
		pthread_mutex_lock(&fs->sync_lock);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		double p = fs->cfg.poll_interval;
		until.tv_sec += (time_t)p;
		until.tv_nsec += (long)((p - (double)(time_t)p) * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!fs->stop &&
		       pthread_cond_timedwait(&fs->sync_cond, &fs->sync_lock,
					      &until) == 0)
			;
	}
	pthread_mutex_unlock(&fs->sync_lock);
	return NULL;
}

int fs_start_sync(struct fs *fs)
{
	int err = reader_start(fs->reader);

	if (err)
		return err;
	atomic_store(&fs->serving, true);
	if (fs->cfg.poll_interval <= 0 || fs->sync_running)
		return 0;
	fs->stop = false;
	int rc = pthread_create(&fs->sync_thread, NULL, sync_main, fs);
	if (rc)
		return -rc;
	fs->sync_running = true;
	return 0;
}

void fs_stop_sync(struct fs *fs)
{
	atomic_store(&fs->serving, false);
	if (!fs->sync_running)
		return;
	pthread_mutex_lock(&fs->sync_lock);
	fs->stop = true;
	pthread_cond_broadcast(&fs->sync_cond);
	pthread_mutex_unlock(&fs->sync_lock);
	pthread_join(fs->sync_thread, NULL);
	fs->sync_running = false;
}
