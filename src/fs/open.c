/* SPDX-License-Identifier: MIT */
/*
 * File content through the mount: opens by version (the reader does the
 * bytes), the table of files open through the kernel (their attributes
 * keep the opened version's size and their invalidations wait for the
 * close), and prefetch of a folder's next small files when it is read in
 * name order.
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
#include <strings.h>
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

struct fs_file {
	struct fs *fs;
	struct reader_handle *h;
	struct sheets_file *sheet; /* a CSV of a .sheets folder instead */
	uint64_t ino;		   /* the kernel's */
};

struct open_ino *fs_open_find_locked(struct fs *fs, uint64_t ino)
{
	for (size_t i = 0; i < fs->nopen; i++)
		if (fs->open[i].ino == ino)
			return &fs->open[i];
	return NULL;
}

static int open_note(struct fs *fs, uint64_t ino, uint64_t size)
{
	int err = 0;

	pthread_mutex_lock(&fs->open_lock);
	struct open_ino *o = fs_open_find_locked(fs, ino);
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
	struct open_ino *o = fs_open_find_locked(fs, ino);
	if (o && o->count)
		o->count--;
	if (o && !o->count && !o->pending_inval)
		*o = fs->open[--fs->nopen];
	pthread_mutex_unlock(&fs->open_lock);
}

void fs_flush_deferred_inval(struct fs *fs)
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

bool fs_defer_inval(struct fs *fs, uint64_t ino)
{
	bool open = false;

	pthread_mutex_lock(&fs->open_lock);
	struct open_ino *o = fs_open_find_locked(fs, ino);
	if (o && o->count) {
		o->pending_inval = true;
		open = true;
	}
	pthread_mutex_unlock(&fs->open_lock);
	return open;
}

/* Office documents: SharePoint writes its column values into their
 * properties when they are downloaded, so their bytes may differ from the
 * listed hash (and size); verify.c holds them to a gentler rule. */
static bool office_name(const char *name)
{
	static const char *const ext[] = {
	    "doc",  "docx", "docm", "dot",  "dotx", "dotm", "xls",
	    "xlsx", "xlsm", "xlsb", "xlt",  "xltx", "xltm", "ppt",
	    "pptx", "pptm", "pot",  "potx", "potm", "pps",  "ppsx",
	    "ppsm", "vsd",  "vsdx", "vsdm", "vstx", "vstm", "one"};
	const char *dot = name ? strrchr(name, '.') : NULL;

	if (!dot)
		return false;
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
		if (strcasecmp(dot + 1, ext[i]) == 0)
			return true;
	return false;
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

	if (it->is_dir || !fs_content_version(it) || l->n == PREFETCH_FILES)
		return 0;
	memset(dst, 0, sizeof(*dst));
	dst->item_id = strdup(it->item_id);
	dst->name = it->name ? strdup(it->name) : NULL;
	dst->etag = it->etag ? strdup(it->etag) : NULL;
	dst->ctag = it->ctag ? strdup(it->ctag) : NULL;
	dst->quickxorhash = it->quickxorhash ? strdup(it->quickxorhash) : NULL;
	dst->size = it->size;
	if (!dst->item_id || (it->name && !dst->name) ||
	    (it->etag && !dst->etag) || (it->ctag && !dst->ctag) ||
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
		    .version = fs_content_version(&l.items[i]),
		    .quickxorhash = l.items[i].quickxorhash,
		    .size = l.items[i].size < 0 ? 0 : (uint64_t)l.items[i].size,
		    .name = l.items[i].name,
		    .lenient_hash = office_name(l.items[i].name)};
	reader_prefetch(fs->reader, files, l.n);
	for (size_t i = 0; i < l.n; i++)
		meta_item_release(&l.items[i]);
}

/* A CSV of a .sheets folder (sheets_view.c). */
static int open_sheet(struct fs *fs, uint64_t ino, struct fs_file **out,
		      int *keep_cache, int *size_changed)
{
	struct fs_file *f = calloc(1, sizeof(*f));
	uint64_t size = 0;
	int err = !f	       ? -ENOMEM
		  : fs->sheets ? sheets_view_open(fs->sheets, ino, &f->sheet,
						  &size, keep_cache)
			       : -ENOENT;

	if (!err)
		err = open_note(fs, ino, size);
	if (err) {
		if (f)
			sheets_view_release(f->sheet);
		free(f);
		return err;
	}
	f->fs = fs;
	f->ino = ino;
	*size_changed = !*keep_cache;
	*out = f;
	return 0;
}

int fs_open(struct fs *fs, uint64_t ino, struct fs_file **out, int *keep_cache,
	    int *size_changed)
{
	struct meta_item it;
	uint64_t store_ino = to_store(fs, ino);
	int err;

	*out = NULL;
	*keep_cache = 0;
	*size_changed = 0;
	if (sheets_view_owns(ino))
		return open_sheet(fs, ino, out, keep_cache, size_changed);
	err = meta_get(fs->m, store_ino, &it);
	if (err)
		return err;
	const char *version = fs_content_version(&it);
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
				 .size = it.size < 0 ? 0 : (uint64_t)it.size,
				 .name = it.name,
				 .lenient_hash = office_name(it.name)};
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
	if (f->sheet)
		return sheets_view_read(f->sheet, buf, size, off);
	return reader_read(f->h, buf, size, off);
}

void fs_release(struct fs_file *f)
{
	if (!f)
		return;
	if (f->sheet)
		sheets_view_release(f->sheet);
	else
		reader_release(f->h);
	open_forget(f->fs, f->ino);
	free(f);
}