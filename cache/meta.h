/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CACHE_META_H
#define SPFS_CACHE_META_H

/*
 * Metadata store: one sqlite database per library (WAL), holding items keyed
 * by (drive id, item id), their inode numbers (stable across remounts: the
 * rowid assigned at first sight), per-folder listing state, and key/values
 * such as the delta link. It stores; it never fetches.
 *
 * Thread safety: every call may come from any thread; a mutex serialises the
 * one connection, and meta_batch() runs several operations as one
 * transaction.
 */

#include <stdint.h>
#include <time.h>

struct meta;

struct meta_item {
	uint64_t ino;
	uint64_t parent_ino; /* 0: no parent known (the library root) */
	char *item_id;
	char *name;
	int is_dir;
	int64_t size;
	struct timespec mtime, ctime;
	char *etag, *ctag, *quickxorhash, *web_url, *modified_by;
	int64_t
	    listed_at; /* folders: epoch s of the last full listing, 0 never */
};

void meta_item_release(struct meta_item *it);

/* Opens or creates path (mode 0600) for drive_id; a database made for
 * another drive is refused with -EINVAL. NULL + *err. */
struct meta *meta_open(const char *path, const char *drive_id, int *err);
void meta_close(struct meta *m);

/* Runs fn(m, ctx) inside one transaction; commits when fn returns 0, rolls
 * back otherwise. Returns fn's result or a store error. */
int meta_batch(struct meta *m, int (*fn)(struct meta *m, void *ctx), void *ctx);

/* Inserts or updates by item_id (ino and listed_at are kept on update).
 * in->ino is ignored; *ino receives the item's inode. 0 or -errno. */
int meta_upsert(struct meta *m, const struct meta_item *in, uint64_t *ino);
int meta_ino_of(struct meta *m, const char *item_id, uint64_t *ino);
int meta_get(struct meta *m, uint64_t ino, struct meta_item *out);
/* The child named name; of several, the newest (mtime, then the greatest
 * item id). -ENOENT. */
int meta_lookup(struct meta *m, uint64_t parent_ino, const char *name,
		struct meta_item *out);
/* Calls fn for each child, by name, one per name (as meta_lookup picks);
 * fn's non-zero return stops and is returned. Items are borrowed for the
 * call. */
int meta_children(struct meta *m, uint64_t parent_ino,
		  int (*fn)(void *ctx, const struct meta_item *it), void *ctx);
/* The same for the first limit children named after `after` (NULL: from
 * the first; limit -1: all), in the same order. */
int meta_children_after(struct meta *m, uint64_t parent_ino, const char *after,
			int limit,
			int (*fn)(void *ctx, const struct meta_item *it),
			void *ctx);
int meta_set_listed(struct meta *m, uint64_t ino, int64_t when);
/* Marks every listed folder stale (after a resync): relisted when next
 * used, still served from the store if that fails. */
int meta_unlist_all(struct meta *m);
/* Deletes ino and everything below it (each inode once: a parent cycle in
 * the store ends the walk). */
int meta_delete_subtree(struct meta *m, uint64_t ino);
/* 1 when ancestor is ino or on ino's parent chain, 0 when not, -errno.
 * Storing an item under a parent it is an ancestor of would close a cycle.
 * Terminates on a store that already holds one. */
int meta_is_ancestor(struct meta *m, uint64_t ancestor, uint64_t ino);

/*
 * A folder's listing stored page by page: each child stored is marked seen
 * (meta_listing_seen, in the page's transaction); at the end,
 * meta_listing_sweep deletes the folder's children not seen (with what is
 * below them) and forgets the marks; a listing given up forgets them with
 * meta_listing_forget. One listing per folder at a time (the caller's
 * single flight); the marks live in a temporary table, never on disk.
 */
int meta_listing_seen(struct meta *m, uint64_t folder, uint64_t ino);
int meta_listing_sweep(struct meta *m, uint64_t folder);
int meta_listing_forget(struct meta *m, uint64_t folder);

/* Small key/value strings (delta link, ...). *value malloc'd; -ENOENT. */
int meta_kv_get(struct meta *m, const char *key, char **value);
int meta_kv_set(struct meta *m, const char *key, const char *value);

#endif
