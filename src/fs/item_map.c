/* SPDX-License-Identifier: MIT */
/* Graph driveItem -> metadata store row; see item_map.h. */
#include "config.h"

#include "fs/item_map.h"

#include <string.h>

int fs_meta_from_graph(const struct graph_item *gi, uint64_t parent_ino,
		       struct meta_item *mi)
{
	memset(mi, 0, sizeof(*mi));
	mi->parent_ino = parent_ino;
	mi->item_id = gi->id;
	mi->name = gi->name;
	mi->is_dir = gi->is_folder;
	mi->size = gi->is_folder ? 0 : gi->size;
	mi->mtime = gi->mtime;
	mi->ctime = gi->ctime;
	mi->etag = gi->etag;
	mi->ctag = gi->ctag;
	mi->quickxorhash = gi->quickxorhash;
	mi->web_url = gi->web_url;
	mi->modified_by = gi->modified_by;
	return 0;
}
