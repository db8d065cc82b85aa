/* SPDX-License-Identifier: MIT */
/* driveItem -> fs_meta_from_graph -> sqlite row and back: every field
 * round-trips byte for byte (NULL stays NULL, "" stays ""), the inode is
 * kept on update, and lookup by (parent, name) and by item id finds it. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/meta.h"
#include "fs/item_map.h"
#include "graph/item.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parents no item's inode can be (inodes count up from 1): deleting a
 * subtree never loops, and the high one crosses sqlite's signed int64. */
#define PARENT_LOW  UINT64_C(0)
#define PARENT_HIGH UINT64_C(0xfedcba9876543210)

static struct meta *m;
static char dir[] = "/tmp/spfs-fuzz-item-row.XXXXXX";
static char path[sizeof(dir) + 16];

static void cleanup(void)
{
	char side[sizeof(path) + 8];

	meta_close(m);
	m = NULL;
	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	rmdir(dir);
}

static void open_store(void)
{
	int err;

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	m = meta_open(path, "b!fuzz", &err);
	if (!m) {
		rmdir(dir);
		abort();
	}
	atexit(cleanup);
}

/* The same string, or both NULL. */
static int same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static void check_row(const struct meta_item *r, const struct meta_item *in,
		      uint64_t ino)
{
	if (r->ino != ino || r->parent_ino != in->parent_ino ||
	    !same(r->item_id, in->item_id) || !same(r->name, in->name) ||
	    r->is_dir != in->is_dir || r->size != in->size ||
	    r->mtime.tv_sec != in->mtime.tv_sec ||
	    r->mtime.tv_nsec != in->mtime.tv_nsec ||
	    r->ctime.tv_sec != in->ctime.tv_sec ||
	    r->ctime.tv_nsec != in->ctime.tv_nsec || !same(r->etag, in->etag) ||
	    !same(r->ctag, in->ctag) ||
	    !same(r->quickxorhash, in->quickxorhash) ||
	    !same(r->web_url, in->web_url) ||
	    !same(r->modified_by, in->modified_by) || r->listed_at != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct graph_item gi;
	struct meta_item mi, got;
	uint64_t ino, again, by_id;

	if (!m)
		open_store();
	if (graph_item_parse((const char *)data, size, &gi) != 0)
		return 0;
	if (gi.deleted) {
		graph_item_release(&gi);
		return 0;
	}
	uint64_t parent = strlen(gi.id) & 1 ? PARENT_HIGH : PARENT_LOW;
	if (fs_meta_from_graph(&gi, parent, &mi) != 0)
		abort();
	/* The mapping itself: borrowed strings, folders have size 0. */
	if (mi.item_id != gi.id || mi.name != gi.name || mi.etag != gi.etag ||
	    mi.ctag != gi.ctag || mi.quickxorhash != gi.quickxorhash ||
	    mi.web_url != gi.web_url || mi.modified_by != gi.modified_by ||
	    mi.parent_ino != parent || mi.is_dir != (int)gi.is_folder ||
	    mi.size != (gi.is_folder ? 0 : gi.size) || mi.size < 0 ||
	    mi.ino != 0 || mi.listed_at != 0 ||
	    memcmp(&mi.mtime, &gi.mtime, sizeof(mi.mtime)) != 0 ||
	    memcmp(&mi.ctime, &gi.ctime, sizeof(mi.ctime)) != 0)
		abort();

	/* Insert, then update in place: the inode stays. */
	if (meta_upsert(m, &mi, &ino) != 0 || ino == 0 ||
	    meta_upsert(m, &mi, &again) != 0 || again != ino)
		abort();
	if (meta_get(m, ino, &got) != 0)
		abort();
	check_row(&got, &mi, ino);
	meta_item_release(&got);
	if (meta_lookup(m, parent, mi.name, &got) != 0)
		abort();
	check_row(&got, &mi, ino);
	meta_item_release(&got);
	if (meta_ino_of(m, mi.item_id, &by_id) != 0 || by_id != ino)
		abort();

	/* Leave the store empty for the next input: lookups stay exact. */
	if (meta_delete_subtree(m, ino) != 0 ||
	    meta_get(m, ino, &got) != -ENOENT)
		abort();
	graph_item_release(&gi);
	return 0;
}
