/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_MOUNTINFO_H
#define SPFS_CSI_MOUNTINFO_H

/*
 * What is mounted where, from /proc/self/mountinfo (through libmount), and
 * the unmounts the mounter needs. Never stat()s a mount point: a FUSE mount
 * whose daemon died answers ENOTCONN to stat, and would look unmounted.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * The topmost mount at path (path must be canonical: absolute, no
 * symlinks). Returns 1 with its fstype in `fstype` (e.g. "fuse.spfs") and
 * its device in *devno (either may be NULL), 0 when nothing is mounted at
 * path, or -errno. `table` is the mountinfo file to read (NULL:
 * /proc/self/mountinfo; tests pass a fixture).
 */
int mountinfo_top(const char *table, const char *path, char *fstype,
		  size_t fstype_size, dev_t *devno);

/* When the topmost mount at path is spfs's (fuse.spfs): true, and its
 * device in *devno (may be NULL). A bind of a FUSE mount shares the
 * device, so equal devices mean the same daemon serves both paths. */
bool mountinfo_is_spfs(const char *table, const char *path, dev_t *devno);

/*
 * Detaches (MNT_DETACH) every spfs mount stacked at path, topmost first,
 * and nothing else. Returns how many were detached, or -errno.
 */
int mount_detach_spfs(const char *path);

#endif
