/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_FS_IMPL_H
#define SPFS_FS_FS_IMPL_H

/*
 * The inside of struct fs, shared by the files of src/fs that implement
 * fs.h: fs.c (lifecycle, listings, attributes), open.c (file content and
 * the open-file table), sync.c (the delta thread), stats.c (counters),
 * probe.c (the threads behind the probes). Nothing outside src/fs includes
 * this.
 *
 * Locks, in order: list_lock, then the store's lock. open_lock, seq_lock,
 * quota_lock, sync_lock and probe_lock are leaves. No lock is held while
 * calling the notify callbacks, nor across the network (list_lock guards
 * only the table of listings in flight).
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "fs/fs.h"

struct graph_item;
struct meta_item;
struct list_flight;

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
	struct sheets_view *sheets; /* NULL unless -o sheets */
	char *drive_id;
	char *root_id;
	uint64_t root_ino; /* the store's inode of the mounted folder */
	struct fs_config cfg;
	struct fs_notify notify;
	pthread_mutex_t list_lock;   /* guards flights */
	pthread_cond_t list_done;    /* a listing in flight ended */
	struct list_flight *flights; /* folders being listed now */
	pthread_t sync_thread;
	bool sync_running;
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cond;
	bool stop;
	atomic_bool delta_healthy; /* last delta round succeeded */
	atomic_llong delta_ok_at;  /* epoch s of the last good delta round */
	atomic_bool serving;	   /* mounted: between start and stop */
	/* probe.c: the liveness and lister threads, and what probes read. */
	pthread_t probe_threads[2];
	int nprobe_threads;
	pthread_mutex_t probe_lock; /* guards probe_stop */
	pthread_cond_t probe_cond;
	bool probe_stop;
	atomic_bool root_listed; /* the last listing of the root worked */
	/* Monotonic ms when the running getattr began; 0: none runs. */
	atomic_llong probe_op_since_ms;
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
static inline uint64_t to_store(const struct fs *fs, uint64_t ino)
{
	if (ino == FS_ROOT_INO)
		return fs->root_ino;
	return ino == fs->root_ino ? FS_ROOT_INO : ino;
}

static inline uint64_t to_kernel(const struct fs *fs, uint64_t ino)
{
	if (ino == fs->root_ino)
		return FS_ROOT_INO;
	return ino == FS_ROOT_INO ? fs->root_ino : ino;
}

/* fs.c */
/* The key of a file's content: cTag, else eTag; NULL when it has neither. */
const char *fs_content_version(const struct meta_item *it);
/* Items spfs does not show: OneNote packages, malware-flagged files. */
bool fs_item_hidden(const struct graph_item *gi);

/* Deep copies of the items a walk yields (graph_children, graph_delta):
 * one page's worth, cleared after each page is stored. */
struct listing {
	struct graph_item *items;
	size_t n, cap;
};
int fs_listing_collect(void *ctx, const struct graph_item *gi);
/* Releases the items, keeps the array for the next page. */
void fs_listing_clear(struct listing *l);
/*
 * Before storing gi under parent (store inodes): 1 when gi is parent or
 * one of its ancestors, so storing it there would close a parent cycle;
 * 0 when it may go there (a sibling of the same name is logged: the store
 * shows the newest); -errno. what prefixes the log line.
 */
int fs_check_placement(struct fs *fs, const struct graph_item *gi,
		       uint64_t parent, const char *what);

/* probe.c: the probe threads (started and stopped with the delta
 * thread). */
int fs_probe_start(struct fs *fs);
void fs_probe_stop(struct fs *fs);

/* open.c; open_lock held for the _locked one. */
struct open_ino *fs_open_find_locked(struct fs *fs, uint64_t ino);
/* Invalidations that waited for files to close (delta thread). */
void fs_flush_deferred_inval(struct fs *fs);
/* True (and remembered) when ino is open: its invalidation must wait. */
bool fs_defer_inval(struct fs *fs, uint64_t ino);

#endif
