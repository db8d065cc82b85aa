/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CACHEDIR_H
#define SPFS_CACHEDIR_H

/*
 * The cache directory, checked before anything is written into it: spfs
 * often runs as root, and a directory someone else controls (a symlink to
 * their choice, one they own, or one they may write into) would let them
 * choose what root overwrites or chmods.
 *
 * Rules: the directory itself is never a symbolic link; it is owned by
 * spfs's effective user; it ends up 0700 (one writable by group or others,
 * as a Kubernetes emptyDir is, is tightened through its descriptor, never
 * through its name). Files in it are opened relative to that descriptor
 * with O_NOFOLLOW and must be regular files owned by that user.
 */

#include <stddef.h>

#include "base/buf.h"

/*
 * Opens path as the cache directory, creating it and its missing parents
 * (0700). Returns an O_DIRECTORY descriptor (close-on-exec), or -errno with
 * one line in *msg saying what is wrong and how to fix it: -ELOOP (a
 * symbolic link), -ENOTDIR, -EPERM (another owner), or the error of mkdir
 * or open.
 */
int cachedir_open(const char *path, struct buf *msg);

/*
 * Opens name in the cache directory dirfd, without following a symbolic
 * link: flags as for openat(2) (O_NOFOLLOW and O_CLOEXEC are added; files
 * are created 0600; O_TRUNC happens after the checks). The file must be a
 * regular file owned by the effective user: otherwise -EPERM, and a log
 * line naming it. Returns the descriptor or -errno.
 */
int cachedir_openat(int dirfd, const char *name, int flags);

#endif
