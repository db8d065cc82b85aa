/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_FS_H
#define SPFS_FS_FS_H

/*
 * Filesystem semantics over Graph (fetch) and the metadata store (keep):
 * lookups and attributes come from sqlite; a folder is listed from Graph the
 * first time it is needed and then kept current by the delta thread, which
 * also tells the kernel exactly which entries and inodes changed. No FUSE
 * headers here: the adapter registers callbacks.
 *
 * Inode numbers: FS_ROOT_INO is the mounted folder; every other number is the
 * store's stable inode.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

struct buf;

#define FS_ROOT_INO 1

struct graph;
struct meta;
struct content;
struct fs;
struct fs_file;

struct fs_config {
	uid_t uid;
	gid_t gid;
	mode_t umask;	      /* applied to 0444 files and 0555 folders */
	double poll_interval; /* seconds between delta polls */
	double list_ttl;      /* seconds a listing is trusted without delta */
	uint64_t chunk_size;  /* content: bytes per ranged download */
	uint64_t readahead;   /* bytes of read-ahead for sequential readers */
	uint64_t small_file;  /* files up to this are fetched whole */
	double read_timeout;  /* seconds of retrying before a read fails */
	uint64_t cache_size;  /* the store's cap (for the stats) */
	double liveness_timeout;    /* seconds a metadata operation may take
				       before the filesystem counts as wedged */
	bool sheets;		    /* -o sheets: workbooks' .sheets folders */
	const char *sheets_tmp_dir; /* scratch for .xls (borrowed) */
};

struct fs_attr {
	uint64_t ino;
	mode_t mode;
	uint64_t size;
	struct timespec mtime, ctime;
	uint32_t nlink;
	uid_t uid;
	gid_t gid;
};

/* Borrows g, m and store (NULL: cache=off). drive_id/root_id name the
 * mounted folder. */
struct fs *fs_new(struct graph *g, struct meta *m, struct content *store,
		  const char *drive_id, const char *root_id,
		  const struct fs_config *cfg, int *err);
void fs_free(struct fs *fs);

/* Kernel invalidation, called from the delta thread only, never with a lock
 * held that a filesystem operation needs. */
struct fs_notify {
	void (*inval_entry)(void *ctx, uint64_t parent, const char *name);
	void (*inval_inode)(void *ctx, uint64_t ino);
	void *ctx;
};
void fs_set_notify(struct fs *fs, const struct fs_notify *n);

/* Starts the background threads (delta when poll_interval > 0, content
 * read-ahead and eviction) / stops the delta thread. */
int fs_start_sync(struct fs *fs);
void fs_stop_sync(struct fs *fs);

/* 0, -ENOENT, -ENOTDIR, -EIO (Graph unreachable and nothing cached), ... */
int fs_lookup(struct fs *fs, uint64_t parent, const char *name,
	      struct fs_attr *out);
int fs_getattr(struct fs *fs, uint64_t ino, struct fs_attr *out);

struct fs_dirent {
	const char *name;
	struct fs_attr attr;
};
/* Calls fn for each entry of a folder (listing it first if needed); a
 * non-zero return from fn stops and is returned. */
int fs_readdir(struct fs *fs, uint64_t ino,
	       int (*fn)(void *ctx, const struct fs_dirent *e), void *ctx);

/* Extended attributes user.sharepoint.{id,etag,ctag,quickxorhash,weburl,
 * modified_by}. Returns the value's length (copied when size allows), or
 * -ENODATA, -ERANGE. */
int fs_getxattr(struct fs *fs, uint64_t ino, const char *name, char *buf,
		size_t size);
int fs_listxattr(struct fs *fs, uint64_t ino, char *buf, size_t size);

int fs_statfs(struct fs *fs, struct statvfs *out);

/* Opens a file for reading the version the store knows now. *keep_cache:
 * the kernel's cached pages are still right. *size_changed: the server's
 * size differs from what getattr said (the caller tells the kernel).
 * 0, -EISDIR, -EIO, -EACCES, ... */
int fs_open(struct fs *fs, uint64_t ino, struct fs_file **out, int *keep_cache,
	    int *size_changed);
/* Bytes read (0 at EOF) or -errno; never a short count before EOF. */
ssize_t fs_read(struct fs_file *f, char *buf, size_t size, uint64_t off);
/* A read answered from the file's chunks in memory, without copying:
 * spans held until fs_read_view_release. The byte count, -errno, or
 * -EAGAIN: use fs_read for this one. */
#define FS_VIEW_MAX 4
struct fs_read_view {
	const char *data[FS_VIEW_MAX];
	size_t len[FS_VIEW_MAX];
	int n;
	void *hold[FS_VIEW_MAX];
};
ssize_t fs_read_view(struct fs_file *f, size_t size, uint64_t off,
		     struct fs_read_view *v);
void fs_read_view_release(struct fs_read_view *v);
void fs_release(struct fs_file *f);

/* Live counters as one JSON object (NUL-terminated when it fits). Returns
 * the length, or -ERANGE when size is too small (size 0: just the length). */
int fs_stats_json(struct fs *fs, char *buf, size_t size);

/* Prometheus text exposition of the same counters (and per-route request
 * counts), appended to b. 0 or -errno. */
int fs_metrics_text(struct fs *fs, struct buf *b);
/* Probes (probe.c), each answered from atomics, never blocking.
 * Mounted: between fs_start_sync and fs_stop_sync (a startup probe). */
bool fs_mounted(struct fs *fs);
/* Mounted and the root listed at the last try (every 5 s), from the
 * network or the cache (a readiness probe). */
bool fs_ready(struct fs *fs);
/* False when a getattr of the root (timed every 5 s) has run longer than
 * liveness_timeout: a wedged filesystem (a liveness probe). *stuck_s: how
 * long the running one has run (0 when none runs). */
bool fs_healthy(struct fs *fs, double *stuck_s);

#endif
