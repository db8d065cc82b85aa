/* SPDX-License-Identifier: MIT */
/*
 * The .sheets folders (sheets_view.h): virtual inodes, names and sizes,
 * opens and reads of the CSVs, and what a delta change means for them.
 *
 * What a folder holds comes from a book: the sheet list of one workbook
 * version, found in an in-memory table (at most TABLE_MAX books, least
 * recently used dropped), else in the content store, else made by
 * converting the workbook (sheets_store.c). Conversions run one at a time
 * (convert_lock): each holds a workbook's shared strings, and a second
 * caller of the same workbook finds the first one's result instead of
 * converting again.
 *
 * Books are reference counted: a caller holds one while it uses its
 * names; a book replaced in the table (a new version, a delta change) is
 * freed by its last holder. Handles copy what they need.
 *
 * Locks: convert_lock, then the metadata store's; lock is a leaf (never
 * held across the store, the reader or a callback).
 */
#include "config.h"

#include "fs/sheets_view.h"
#include "fs/fs_impl.h"
#include "fs/sheets_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "cache/content.h"
#include "cache/meta.h"
#include "graph/item.h"
#include "sheets/sheets.h"

#define SV_BIT	  (1ull << 63)
#define SV_SHIFT  20
#define SV_MAX_WB ((1ull << (63 - SV_SHIFT)) - 1)
#define SUFFIX	  ".sheets"
#define TABLE_MAX 256

struct entry {
	uint64_t wb; /* the workbook's store inode */
	char *name;  /* the workbook's file name, for log lines */
	unsigned refs;
	bool dropped; /* out of the table: freed by its last holder */
	uint64_t used;
	struct sv_book b;
};

struct sheets_view {
	struct fs *fs;
	pthread_mutex_t lock;
	pthread_mutex_t convert_lock;
	struct entry *table[TABLE_MAX];
	size_t n;
	uint64_t clock;
};

struct sheets_file {
	struct sheets_view *v;
	uint64_t wb;
	size_t sheet;
	uint64_t size;
	char *key_item, *key_version, *name;
	bool pinned;
};

static uint64_t folder_ino(uint64_t wb)
{
	return SV_BIT | (wb << SV_SHIFT);
}

static uint64_t wb_of(uint64_t ino)
{
	return (ino & ~SV_BIT) >> SV_SHIFT;
}

/* 0: the folder; i + 1: sheet i. */
static size_t slot_of(uint64_t ino)
{
	return (size_t)(ino & ((1ull << SV_SHIFT) - 1));
}

struct sheets_view *sheets_view_new(struct fs *fs, int *err)
{
	struct sheets_view *v = calloc(1, sizeof(*v));

	if (!v) {
		*err = -ENOMEM;
		return NULL;
	}
	if (!fs->store) {
		/* The CSVs live in the content store. */
		free(v);
		*err = -EINVAL;
		return NULL;
	}
	v->fs = fs;
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->convert_lock, NULL);
	*err = 0;
	return v;
}

static void entry_free(struct entry *e)
{
	sv_book_release(&e->b);
	free(e->name);
	free(e);
}

void sheets_view_free(struct sheets_view *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++)
		entry_free(v->table[i]);
	pthread_mutex_destroy(&v->lock);
	pthread_mutex_destroy(&v->convert_lock);
	free(v);
}

/* A workbook the view serves: a file with a workbook's extension, a
 * content version, an inode the virtual numbers can carry, and a name
 * that still fits NAME_MAX with ".sheets" added. */
static bool is_workbook(const struct meta_item *it)
{
	enum sheets_format f;

	return !it->is_dir && fs_content_version(it) && it->ino <= SV_MAX_WB &&
	       strlen(it->name) + strlen(SUFFIX) <= 255 &&
	       sheets_format_of(it->name, &f);
}

static void base_attr(struct sheets_view *v, const struct meta_item *wb,
		      struct fs_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->mtime = wb->mtime;
	a->ctime = wb->mtime;
	a->uid = v->fs->cfg.uid;
	a->gid = v->fs->cfg.gid;
}

static void folder_attr(struct sheets_view *v, const struct meta_item *wb,
			struct fs_attr *a)
{
	base_attr(v, wb, a);
	a->ino = folder_ino(wb->ino);
	a->mode = S_IFDIR | (0555 & ~v->fs->cfg.umask);
	a->nlink = 2;
}

static void sheet_attr(struct sheets_view *v, const struct meta_item *wb,
		       size_t i, uint64_t size, struct fs_attr *a)
{
	base_attr(v, wb, a);
	a->ino = folder_ino(wb->ino) | (i + 1);
	a->mode = S_IFREG | (0444 & ~v->fs->cfg.umask);
	a->nlink = 1;
	a->size = size;
	/* An open CSV keeps the size of the version it opened. */
	pthread_mutex_lock(&v->fs->open_lock);
	struct open_ino *o = fs_open_find_locked(v->fs, a->ino);
	if (o && o->count)
		a->size = o->size;
	pthread_mutex_unlock(&v->fs->open_lock);
}

/* ---- the table of books ----------------------------------------------------
 */

static struct entry *find_locked(struct sheets_view *v, uint64_t wb)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->table[i]->wb == wb)
			return v->table[i];
	return NULL;
}

static void remove_locked(struct sheets_view *v, struct entry *e)
{
	for (size_t i = 0; i < v->n; i++) {
		if (v->table[i] != e)
			continue;
		v->table[i] = v->table[--v->n];
		if (e->refs)
			e->dropped = true;
		else
			entry_free(e);
		return;
	}
}

static void insert_locked(struct sheets_view *v, struct entry *e)
{
	struct entry *old = find_locked(v, e->wb);

	if (old)
		remove_locked(v, old);
	if (v->n == TABLE_MAX) {
		struct entry *lru = NULL;
		for (size_t i = 0; i < v->n; i++)
			if (!lru || v->table[i]->used < lru->used)
				lru = v->table[i];
		remove_locked(v, lru);
	}
	v->table[v->n++] = e;
}

static void put_book(struct sheets_view *v, struct entry *e)
{
	pthread_mutex_lock(&v->lock);
	if (--e->refs == 0 && e->dropped)
		entry_free(e);
	pthread_mutex_unlock(&v->lock);
}

/* The table's book for e's version (held), else e's book from the store:
 * 0 with *have set or not, -ENOENT when neither has it. */
static int find_or_load(struct sheets_view *v, struct entry *e,
			struct entry **have)
{
	pthread_mutex_lock(&v->lock);
	*have = find_locked(v, e->wb);
	if (*have && strcmp((*have)->b.key_version, e->b.key_version) == 0) {
		(*have)->refs++;
		(*have)->used = ++v->clock;
		pthread_mutex_unlock(&v->lock);
		return 0;
	}
	*have = NULL;
	pthread_mutex_unlock(&v->lock);
	return sv_store_load(v->fs, &e->b);
}

/* The book of workbook `wb` at its current version, held (put_book()),
 * and the workbook's row in *it (the caller releases it). Converts the
 * workbook when neither the table nor the store has it. 0, -ENOENT (not
 * a workbook), -EIO, -ENOMEM. */
static int get_book(struct sheets_view *v, uint64_t wb, struct meta_item *it,
		    struct entry **out)
{
	struct fs *fs = v->fs;
	struct entry *e = NULL, *have = NULL;
	int err = meta_get(fs->m, wb, it);

	*out = NULL;
	if (err)
		return err;
	if (!is_workbook(it)) {
		meta_item_release(it);
		return -ENOENT;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->name = strdup(it->name)) ||
	    sv_book_keys(&e->b, it->item_id, fs_content_version(it))) {
		err = -ENOMEM;
		goto fail;
	}
	e->wb = wb;
	err = find_or_load(v, e, &have);
	if (err == -ENOENT) {
		/* One conversion at a time; one that finished while we
		 * waited left its book in the table and the store. */
		pthread_mutex_lock(&v->convert_lock);
		err = find_or_load(v, e, &have);
		if (err == -ENOENT)
			err = sv_store_convert(fs, it, &e->b);
		pthread_mutex_unlock(&v->convert_lock);
	}
	if (err)
		goto fail;
	if (have) {
		entry_free(e);
		*out = have;
		return 0;
	}
	pthread_mutex_lock(&v->lock);
	e->refs = 1;
	e->used = ++v->clock;
	insert_locked(v, e);
	pthread_mutex_unlock(&v->lock);
	*out = e;
	return 0;
fail:
	if (e)
		entry_free(e);
	meta_item_release(it);
	return err == -ENOMEM ? err : -EIO;
}

/* One log line per refusal per mount (the first EIO that shows it). */
static void log_refusal(struct sheets_view *v, struct entry *e, size_t sheet)
{
	bool *logged =
	    sheet == SIZE_MAX ? &e->b.logged : &e->b.sheets[sheet].logged;
	const char *why = sheet == SIZE_MAX ? e->b.why : e->b.sheets[sheet].why;

	pthread_mutex_lock(&v->lock);
	bool first = !*logged;
	*logged = true;
	pthread_mutex_unlock(&v->lock);
	if (first)
		log_warn("sheets: '%s' cannot be shown as CSV: %s", e->name,
			 why);
}

/* ---- lookup, attributes, listing ----------------------------------------- */

/* "Book.xlsx.sheets" in store folder `parent`: the workbook, if any. */
static int workbook_of_folder_name(struct sheets_view *v, uint64_t parent,
				   const char *name, struct meta_item *it)
{
	size_t n = strlen(name), k = strlen(SUFFIX);
	char *wb;
	int err;

	if (n <= k || strcmp(name + n - k, SUFFIX) != 0)
		return -ENOENT;
	wb = strndup(name, n - k);
	if (!wb)
		return -ENOMEM;
	err = meta_lookup(v->fs->m, parent, wb, it);
	free(wb);
	if (!err && !is_workbook(it)) {
		meta_item_release(it);
		err = -ENOENT;
	}
	return err;
}

int sheets_view_lookup(struct sheets_view *v, uint64_t parent, const char *name,
		       struct fs_attr *out)
{
	struct meta_item it;
	struct entry *e;
	int err;

	if (!sheets_view_owns(parent)) {
		err = workbook_of_folder_name(v, parent, name, &it);
		if (!err) {
			folder_attr(v, &it, out);
			meta_item_release(&it);
		}
		return err;
	}
	if (slot_of(parent) != 0)
		return -ENOTDIR;
	err = get_book(v, wb_of(parent), &it, &e);
	if (err)
		return err;
	if (e->b.why) {
		log_refusal(v, e, SIZE_MAX);
		err = -EIO;
	} else {
		err = -ENOENT;
		for (size_t i = 0; i < e->b.n; i++) {
			if (strcmp(e->b.sheets[i].name, name) != 0)
				continue;
			sheet_attr(v, &it, i, e->b.sheets[i].size, out);
			err = 0;
			break;
		}
	}
	put_book(v, e);
	meta_item_release(&it);
	return err;
}

int sheets_view_getattr(struct sheets_view *v, uint64_t ino,
			struct fs_attr *out)
{
	struct meta_item it;
	struct entry *e;
	size_t slot = slot_of(ino);
	int err;

	if (slot == 0) {
		err = meta_get(v->fs->m, wb_of(ino), &it);
		if (err)
			return err;
		if (is_workbook(&it))
			folder_attr(v, &it, out);
		else
			err = -ENOENT;
		meta_item_release(&it);
		return err;
	}
	err = get_book(v, wb_of(ino), &it, &e);
	if (err)
		return err == -EIO ? -ENOENT : err;
	if (!e->b.why && slot - 1 < e->b.n)
		sheet_attr(v, &it, slot - 1, e->b.sheets[slot - 1].size, out);
	else
		err = -ENOENT;
	put_book(v, e);
	meta_item_release(&it);
	return err;
}

int sheets_view_readdir(struct sheets_view *v, uint64_t ino,
			int (*fn)(void *ctx, const struct fs_dirent *e),
			void *ctx)
{
	struct meta_item it;
	struct entry *e;
	int err;

	if (slot_of(ino) != 0)
		return -ENOTDIR;
	err = get_book(v, wb_of(ino), &it, &e);
	if (err)
		return err;
	if (e->b.why) {
		log_refusal(v, e, SIZE_MAX);
		err = -EIO;
	}
	for (size_t i = 0; !err && i < e->b.n; i++) {
		struct fs_dirent d = {.name = e->b.sheets[i].name};
		sheet_attr(v, &it, i, e->b.sheets[i].size, &d.attr);
		err = fn(ctx, &d);
	}
	put_book(v, e);
	meta_item_release(&it);
	return err;
}

struct workbooks {
	struct meta_item *v;
	size_t n, cap;
	int err;
};

static int collect_workbook(void *ctx, const struct meta_item *it)
{
	struct workbooks *w = ctx;

	if (!is_workbook(it))
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct meta_item *p = realloc(w->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		w->v = p;
		w->cap = cap;
	}
	/* What folder_attr() needs, and the name. */
	struct meta_item *c = &w->v[w->n];
	memset(c, 0, sizeof(*c));
	c->ino = it->ino;
	c->mtime = it->mtime;
	c->name = strdup(it->name);
	if (!c->name)
		return -ENOMEM;
	w->n++;
	return 0;
}

int sheets_view_readdir_folders(struct sheets_view *v, uint64_t folder,
				int (*fn)(void *ctx, const struct fs_dirent *e),
				void *ctx)
{
	struct workbooks w = {0};
	int err = meta_children(v->fs->m, folder, collect_workbook, &w);

	for (size_t i = 0; !err && i < w.n; i++) {
		struct meta_item real;
		char *name = malloc(strlen(w.v[i].name) + sizeof(SUFFIX));
		if (!name) {
			err = -ENOMEM;
			break;
		}
		strcpy(name, w.v[i].name);
		strcat(name, SUFFIX);
		/* A real item of that name wins (lookup finds it first). */
		if (meta_lookup(v->fs->m, folder, name, &real) == 0) {
			meta_item_release(&real);
		} else {
			struct fs_dirent d = {.name = name};
			folder_attr(v, &w.v[i], &d.attr);
			err = fn(ctx, &d);
		}
		free(name);
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.v[i].name);
	free(w.v);
	return err;
}

/* ---- opens and reads
 * --------------------------------------------------------- */

int sheets_view_open(struct sheets_view *v, uint64_t ino,
		     struct sheets_file **out, uint64_t *size, int *keep_cache)
{
	struct meta_item it;
	struct entry *e;
	size_t slot = slot_of(ino);
	struct sheets_file *f = NULL;
	int err;

	*out = NULL;
	if (slot == 0)
		return -EISDIR;
	err = get_book(v, wb_of(ino), &it, &e);
	if (err)
		return err;
	size_t i = slot - 1;
	if (e->b.why || i >= e->b.n) {
		err = -ENOENT;
		goto out;
	}
	if (e->b.sheets[i].why) {
		log_refusal(v, e, i);
		err = -EIO;
		goto out;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->key_item = strdup(e->b.key_item)) ||
	    !(f->key_version = strdup(e->b.key_version)) ||
	    !(f->name = strdup(e->name))) {
		err = -ENOMEM;
		goto out;
	}
	f->v = v;
	f->wb = wb_of(ino);
	f->sheet = i;
	f->size = e->b.sheets[i].size;
	pthread_mutex_lock(&v->lock);
	/* The kernel's pages are this version's if this version was opened
	 * before in this mount (a new version is a new book). */
	*keep_cache = e->b.sheets[i].opened;
	e->b.sheets[i].opened = true;
	pthread_mutex_unlock(&v->lock);
	*size = f->size;
	/* Evicted last while open (a miss converts the workbook again). */
	content_pin(v->fs->store, f->key_item);
	f->pinned = true;
	*out = f;
	f = NULL;
out:
	if (f)
		sheets_view_release(f);
	put_book(v, e);
	meta_item_release(&it);
	return err;
}

/* A chunk of an open CSV was evicted: convert the workbook again (the
 * same version gives the same bytes). 0, or -EIO when the workbook
 * changed since the open or cannot be converted now. */
static int reconvert(struct sheets_file *f)
{
	struct sheets_view *v = f->v;
	struct meta_item it;
	struct sv_book b = {0};
	int err;

	pthread_mutex_lock(&v->convert_lock);
	err = meta_get(v->fs->m, f->wb, &it);
	if (err)
		goto out;
	err = is_workbook(&it)
		  ? sv_book_keys(&b, it.item_id, fs_content_version(&it))
		  : -ENOENT;
	if (!err && strcmp(b.key_version, f->key_version) != 0) {
		log_warn("sheets: '%s' changed while its CSV was open",
			 f->name);
		err = -EIO;
	} else if (!err) {
		err = sv_store_convert(v->fs, &it, &b);
	}
	sv_book_release(&b);
	meta_item_release(&it);
out:
	pthread_mutex_unlock(&v->convert_lock);
	return err ? -EIO : 0;
}

ssize_t sheets_view_read(struct sheets_file *f, char *buf, size_t size,
			 uint64_t off)
{
	size_t got = 0;
	int err;

	if (off >= f->size)
		return 0;
	if (size > f->size - off)
		size = (size_t)(f->size - off);
	err = sv_store_read(f->v->fs, f->key_item, f->key_version, f->sheet,
			    off, buf, size, &got);
	if (err == -ENOENT && reconvert(f) == 0)
		err = sv_store_read(f->v->fs, f->key_item, f->key_version,
				    f->sheet, off, buf, size, &got);
	if (err == -ENOENT)
		log_warn("sheets: '%s': a CSV's bytes left the content cache "
			 "while it was read",
			 f->name);
	return err ? -EIO : (ssize_t)got;
}

void sheets_view_release(struct sheets_file *f)
{
	if (!f)
		return;
	if (f->pinned)
		content_unpin(f->v->fs->store, f->key_item);
	free(f->key_item);
	free(f->key_version);
	free(f->name);
	free(f);
}

/* ---- delta
 * ------------------------------------------------------------------- */

/* The CSV names the kernel may know for workbook `old`: the table's, else
 * the stored manifest of its old version. *names NULL when unknown. */
static int known_names(struct sheets_view *v, const struct meta_item *old,
		       char ***names, size_t *n)
{
	struct sv_book b;
	int err = 0;

	*names = NULL;
	*n = 0;
	pthread_mutex_lock(&v->lock);
	struct entry *e = find_locked(v, old->ino);
	if (e && e->b.n && !(*names = calloc(e->b.n, sizeof(char *))))
		err = -ENOMEM;
	for (size_t i = 0; *names && i < e->b.n; i++) {
		if (!((*names)[i] = strdup(e->b.sheets[i].name)))
			err = -ENOMEM;
		(*n)++;
	}
	if (e)
		remove_locked(v, e);
	pthread_mutex_unlock(&v->lock);
	if (e || err)
		return err;
	if (sv_book_keys(&b, old->item_id, fs_content_version(old)))
		return -ENOMEM;
	if (sv_store_load(v->fs, &b) == 0 && b.n &&
	    (*names = calloc(b.n, sizeof(char *)))) {
		for (size_t i = 0; i < b.n; i++) {
			(*names)[i] = b.sheets[i].name;
			b.sheets[i].name = NULL;
		}
		*n = b.n;
	}
	sv_book_release(&b);
	return 0;
}

int sheets_view_changed(struct sheets_view *v, const struct meta_item *old,
			const struct graph_item *gi, uint64_t new_parent,
			int (*add)(void *ctx, uint64_t parent, const char *name,
				   uint64_t ino),
			void *ctx)
{
	char name[1024];
	int err = 0;

	if (old && is_workbook(old)) {
		uint64_t folder = folder_ino(old->ino);
		char **names;
		size_t n;
		snprintf(name, sizeof(name), "%s%s", old->name, SUFFIX);
		err = add(ctx, old->parent_ino, name, 0);
		err = err ? err : add(ctx, 0, NULL, folder);
		int e2 = known_names(v, old, &names, &n);
		err = err ? err : e2;
		for (size_t i = 0; i < n; i++) {
			if (!err && names[i])
				err = add(ctx, folder, names[i], 0);
			if (!err)
				err = add(ctx, 0, NULL, folder | (i + 1));
			free(names[i]);
		}
		free(names);
	}
	/* A new workbook, or one renamed or moved: its folder's name may
	 * be cached as a negative entry. */
	enum sheets_format f;
	if (!err && gi && !gi->deleted && !gi->is_folder && new_parent &&
	    gi->name && sheets_format_of(gi->name, &f) &&
	    (!old || old->parent_ino != new_parent ||
	     strcmp(old->name, gi->name) != 0)) {
		snprintf(name, sizeof(name), "%s%s", gi->name, SUFFIX);
		err = add(ctx, new_parent, name, 0);
	}
	return err;
}
