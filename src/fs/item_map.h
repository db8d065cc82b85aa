/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_ITEM_MAP_H
#define SPFS_FS_ITEM_MAP_H

/*
 * Graph driveItem -> metadata store row. The strings of *mi are borrowed
 * from *gi (no copies): mi is valid while gi lives, and must not be passed
 * to meta_item_release().
 */

#include <stdint.h>

#include "cache/meta.h"
#include "graph/item.h"

/* Fills *mi from *gi under parent_ino (ino and listed_at 0; a folder's size
 * is 0). Returns 0. */
int fs_meta_from_graph(const struct graph_item *gi, uint64_t parent_ino,
		       struct meta_item *mi);

#endif
