/* SPDX-License-Identifier: MIT */
/*
 * The delta thread: polls Graph's change feed every poll_interval, applies
 * each round in one store transaction by item id, drops changed files'
 * cached versions, and tells the kernel exactly which entries and inodes
 * changed (after the transaction, with no lock held; an open file's inode
 * invalidation waits for its close). A 410 resync, or a stored deltaLink
 * that is not on Graph's origin, starts over from now and marks every
 * listing stale, so folders are re-read lazily.
 *
 * A round is applied page by page (one transaction each), so its memory is
 * one page; one past the walk's item bound starts over from now, as a 410
 * does. An item whose new folder is itself or below it would close a
 * parent loop: it waits for the end of the round (another item may move
 * the rest out of the way) and is refused if it still would.
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

struct inval {
	uint64_t parent; /* 0: inode only */
	char *name;
	uint64_t ino;
};

struct delta_round {
	struct fs *fs;
	struct inval *inval;
	size_t ninval, capinval;
	struct listing page;	 /* this page's items */
	struct listing deferred; /* would close a cycle now: tried at the end */
	bool final;		 /* applying the deferred ones: refuse */
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

static int add_inval_cb(void *ctx, uint64_t parent, const char *name,
			uint64_t ino)
{
	return add_inval(ctx, parent, name, ino);
}

/* Applies one item of a delta page inside the store transaction. 1: it
 * would close a parent cycle now and waits for the end of the round. */
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
	if (fs_item_hidden(gi))
		goto out;
	err = fs_check_placement(fs, gi, parent, "delta");
	if (err == 1 && d->final) {
		log_warn("delta: skipped '%s' (%s): its new folder is itself "
			 "or below it, a parent loop; it stays where it was",
			 gi->name, gi->id);
		err = 0;
		goto out;
	}
	if (err)
		goto out; /* 1: deferred by the caller */
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
		const char *now = fs_content_version(&mi);
		if (have && now && strcmp(fs_content_version(&old), now) != 0)
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
	/* A workbook's .sheets folder follows it (-o sheets). */
	if (!err && fs->sheets)
		err = sheets_view_changed(fs->sheets, have ? &old : NULL, gi,
					  parent, add_inval_cb, d);
	if (have)
		meta_item_release(&old);
	return err;
}

/* An item moved under what is below it may be honest: another item of the
 * round moves the rest out of the way. It waits for the end of the round,
 * up to a bound (a hostile feed could send nothing else). */
#define DEFERRED_MAX 10000

/* Applies a list of items inside the store transaction; those that would
 * close a cycle go to d->deferred. */
static int apply_items(struct delta_round *d, const struct listing *l)
{
	int err = 0;

	for (size_t i = 0; !err && i < l->n; i++) {
		err = apply_one(d, &l->items[i]);
		if (err != 1)
			continue;
		err = d->deferred.n < DEFERRED_MAX
			  ? fs_listing_collect(&d->deferred, &l->items[i])
			  : 0;
		if (d->deferred.n == DEFERRED_MAX)
			log_warn("delta: more than %d items would close a "
				 "parent loop; skipping the rest",
				 DEFERRED_MAX);
	}
	return err;
}

static int apply_page(struct meta *m, void *ctx)
{
	struct delta_round *d = ctx;

	(void)m;
	return apply_items(d, &d->page);
}

/* The deferred items, again and again while some of them land; what is
 * left still closes a cycle after the whole round: refused. */
static int apply_deferred(struct meta *m, void *ctx)
{
	struct delta_round *d = ctx;
	int err = 0;

	(void)m;
	for (size_t before = SIZE_MAX;
	     !err && d->deferred.n && d->deferred.n < before;) {
		struct listing again = d->deferred;
		before = again.n;
		memset(&d->deferred, 0, sizeof(d->deferred));
		err = apply_items(d, &again);
		fs_listing_clear(&again);
		free(again.items);
	}
	if (!err && d->deferred.n) {
		struct listing left = d->deferred;
		memset(&d->deferred, 0, sizeof(d->deferred));
		d->final = true;
		err = apply_items(d, &left);
		fs_listing_clear(&left);
		free(left.items);
	}
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
		    !fs_defer_inval(fs, to_kernel(fs, v->ino)))
			fs->notify.inval_inode(fs->notify.ctx,
					       to_kernel(fs, v->ino));
	}
}

static void inval_clear(struct delta_round *d)
{
	for (size_t i = 0; i < d->ninval; i++)
		free(d->inval[i].name);
	d->ninval = 0;
}

/* A page's changes, once in the store, go to the kernel. */
static int commit(struct delta_round *d, int (*fn)(struct meta *, void *))
{
	int err = meta_batch(d->fs->m, fn, d);

	if (!err)
		notify_all(d->fs, d);
	inval_clear(d);
	return err;
}

/* After each delta page: applied in its own transaction, then dropped, so
 * a round's memory is one page whatever its length. A round that fails
 * later keeps its old link and is replayed: applying an item again is
 * harmless (the latest state, by id). */
static int delta_page_end(void *ctx)
{
	struct delta_round *d = ctx;
	int err = commit(d, apply_page);

	fs_listing_clear(&d->page);
	return err;
}

static int delta_collect(void *ctx, const struct graph_item *gi)
{
	struct delta_round *d = ctx;

	return fs_listing_collect(&d->page, gi);
}

static void round_release(struct delta_round *d)
{
	struct fs *fs = d->fs;

	fs_listing_clear(&d->page);
	free(d->page.items);
	fs_listing_clear(&d->deferred);
	free(d->deferred.items);
	inval_clear(d);
	free(d->inval);
	memset(d, 0, sizeof(*d));
	d->fs = fs;
}

/* One round from link (NULL: from now on), deferred items last. */
static int delta_round(struct delta_round *d, const char *link, char **next,
		       char **resync)
{
	struct fs *fs = d->fs;
	int err = graph_delta(fs->g, fs->drive_id, link, delta_collect,
			      delta_page_end, d, next, resync);

	if (!err && d->deferred.n)
		err = commit(d, apply_deferred);
	return err;
}

static int unlist_all(struct meta *m, void *ctx)
{
	struct delta_round *d = ctx;
	int err = meta_unlist_all(m);

	return err ? err : add_inval(d, 0, NULL, d->fs->root_ino);
}

/* One poll: fetch the delta pages, apply them, store the new link. */
static int delta_once(struct fs *fs)
{
	char *link = NULL, *next = NULL, *resync = NULL;
	struct delta_round d = {.fs = fs};
	bool resyncing = false;
	int err;

	fs_flush_deferred_inval(fs);
	if (meta_kv_get(fs->m, "delta_link", &link) == -ENOENT)
		link = NULL;
	if (link && !graph_link_ours(fs->g, link)) {
		/* Planted, or from a service that sent us elsewhere: the
		 * token must not follow it. Start over from now. */
		log_warn("delta: the stored deltaLink is not on %s; "
			 "discarding it and re-reading folders as they are "
			 "used",
			 graph_origin(fs->g));
		free(link);
		link = NULL;
		resyncing = true;
	}
	err = delta_round(&d, link, &next, &resync);
	if (err == -ESTALE || (err == -EFBIG && link)) {
		/* 410: our token is gone; or more changes than a round may
		 * hold (a bulk import): this link would fail every poll.
		 * Re-enumerate from now on, and relist folders lazily; readers
		 * keep the cached tree meanwhile. */
		log_warn("delta: %s; re-reading folders as they are used",
			 err == -ESTALE ? "resync required"
					: "too many changes for one round");
		round_release(&d);
		free(next);
		free(resync);
		next = resync = NULL;
		resyncing = true;
		err = delta_round(&d, NULL, &next, &resync);
	}
	if (!err && resyncing)
		err = commit(&d, unlist_all);
	if (!err)
		err = meta_kv_set(fs->m, "delta_link", next);
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
	err = fs_probe_start(fs);
	if (err)
		return err;
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
	fs_probe_stop(fs);
	if (!fs->sync_running)
		return;
	pthread_mutex_lock(&fs->sync_lock);
	fs->stop = true;
	pthread_cond_broadcast(&fs->sync_cond);
	pthread_mutex_unlock(&fs->sync_lock);
	pthread_join(fs->sync_thread, NULL);
	fs->sync_running = false;
}