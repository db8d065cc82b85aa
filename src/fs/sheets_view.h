/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_SHEETS_VIEW_H
#define SPFS_FS_SHEETS_VIEW_H

/*
 * -o sheets: beside every workbook NAME.xlsx (.xlsm, .xls; any case) a
 * read-only folder NAME.xlsx.sheets/ with one CSV per worksheet. Internal
 * to src/fs: fs.c and open.c call in at lookup, getattr, readdir, xattrs
 * and open/read; sync.c tells it which workbooks changed.
 *
 * Inodes: virtual numbers with the top bit set, derived from the
 * workbook's store inode (so stable across remounts): the folder is
 * SHEETS_INO(wb, 0), sheet i is SHEETS_INO(wb, i + 1).
 *
 * Listing or looking inside a folder converts the workbook once (read
 * through the reader, so through the content cache) and stores every
 * CSV and the list of sheets in the content store under the workbook's
 * item id and content version: a remount serves them without converting,
 * a new version converts again. A workbook the converter refuses gives
 * EIO (the folder, or that sheet's CSV) with one log line per mount.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/fs.h"

struct fs;
struct graph_item;
struct meta_item;
struct sheets_view;
struct sheets_file;

/* Whether ino is one of the view's. */
static inline bool sheets_view_owns(uint64_t ino)
{
	return (ino >> 63) != 0;
}

/* Borrows fs (its store, reader, metadata and config). NULL + *err. */
struct sheets_view *sheets_view_new(struct fs *fs, int *err);
void sheets_view_free(struct sheets_view *v);

/* A name in folder `parent` (a store inode, or one of the view's folders)
 * that the store does not have: a workbook's .sheets folder, or a CSV.
 * 0, -ENOENT, -EIO (the workbook cannot be converted). */
int sheets_view_lookup(struct sheets_view *v, uint64_t parent, const char *name,
		       struct fs_attr *out);
/* 0, -ENOENT. */
int sheets_view_getattr(struct sheets_view *v, uint64_t ino,
			struct fs_attr *out);
/* The CSVs of a .sheets folder. */
int sheets_view_readdir(struct sheets_view *v, uint64_t ino,
			int (*fn)(void *ctx, const struct fs_dirent *e),
			void *ctx);
/* After a real folder's own entries: its workbooks' .sheets folders (none
 * where the folder holds a real item of that name). */
int sheets_view_readdir_folders(struct sheets_view *v, uint64_t folder,
				int (*fn)(void *ctx, const struct fs_dirent *e),
				void *ctx);

/* Opens a CSV. *size: its length; *keep_cache: the kernel's pages of
 * this inode are this version's. 0, -EISDIR, -ENOENT, -EIO. */
int sheets_view_open(struct sheets_view *v, uint64_t ino,
		     struct sheets_file **out, uint64_t *size, int *keep_cache);
/* Bytes read (0 at the end) or -EIO; never short before the end. */
ssize_t sheets_view_read(struct sheets_file *f, char *buf, size_t size,
			 uint64_t off);
void sheets_view_release(struct sheets_file *f);

/* A delta change of item `old` (NULL: new to us) into `gi`, which is in
 * store folder new_parent (0: deleted or moved out). Adds the kernel
 * invalidations the view needs through add (sync.c's list, notified after
 * the round) and forgets what it held of the old version. 0 or -errno. */
int sheets_view_changed(struct sheets_view *v, const struct meta_item *old,
			const struct graph_item *gi, uint64_t new_parent,
			int (*add)(void *ctx, uint64_t parent, const char *name,
				   uint64_t ino),
			void *ctx);

#endif
