/* SPDX-License-Identifier: MIT */
/* The sqlite metadata store, on a real database file. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "cache/meta.h"

static char dir[] = "/tmp/spfs-test-meta-XXXXXX";
static char path[256];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/lib.meta.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static uint64_t put(struct meta *m, const char *id, uint64_t parent,
		    const char *name, int is_dir, int64_t size)
{
	struct meta_item it = {.item_id = (char *)id,
			       .parent_ino = parent,
			       .name = (char *)name,
			       .is_dir = is_dir,
			       .size = size,
			       .etag = (char *)"\"e\"",
			       .mtime = {1700000000, 5}};
	uint64_t ino = 0;

	assert_int_equal(meta_upsert(m, &it, &ino), 0);
	assert_true(ino > 0);
	return ino;
}

static int count_child(void *ctx, const struct meta_item *it)
{
	(void)it;
	(*(int *)ctx)++;
	return 0;
}

static int append_name(void *ctx, const struct meta_item *it)
{
	strcat(ctx, it->name);
	strcat(ctx, "/");
	return 0;
}

static void test_items_and_inodes(void **state)
{
	int err;

	(void)state;
	unlink(path);
	struct meta *m = meta_open(path, "b!drive", &err);
	assert_non_null(m);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	uint64_t root = put(m, "ROOT", 0, "", 1, 0);
	uint64_t a = put(m, "A", root, "reports", 1, 0);
	uint64_t f = put(m, "F", a, "q3 #1.csv", 0, 42);
	/* Upsert keeps the inode; rename/move update in place. */
	assert_int_equal(put(m, "F", root, "moved.csv", 0, 43), f);

	struct meta_item it;
	assert_int_equal(meta_lookup(m, root, "moved.csv", &it), 0);
	assert_int_equal(it.ino, f);
	assert_int_equal(it.size, 43);
	assert_int_equal(it.mtime.tv_nsec, 5);
	assert_string_equal(it.etag, "\"e\"");
	meta_item_release(&it);
	assert_int_equal(meta_lookup(m, a, "q3 #1.csv", &it), -ENOENT);
	/* Names are exact: no case folding. */
	assert_int_equal(meta_lookup(m, root, "MOVED.csv", &it), -ENOENT);

	assert_int_equal(meta_set_listed(m, a, 1234), 0);
	assert_int_equal(meta_get(m, a, &it), 0);
	assert_int_equal(it.listed_at, 1234);
	meta_item_release(&it);
	/* An update keeps the listing state. */
	put(m, "A", root, "reports", 1, 0);
	assert_int_equal(meta_get(m, a, &it), 0);
	assert_int_equal(it.listed_at, 1234);
	meta_item_release(&it);
	assert_int_equal(meta_unlist_all(m), 0);
	assert_int_equal(meta_get(m, a, &it), 0);
	assert_int_equal(it.listed_at, 1);
	meta_item_release(&it);

	uint64_t deep = put(m, "D", a, "inner", 1, 0);
	put(m, "DF", deep, "x", 0, 1);
	int n = 0;
	assert_int_equal(meta_children(m, root, count_child, &n), 0);
	assert_int_equal(n, 2);
	/* A window of children after a name, in name order. */
	put(m, "F1", root, "b.csv", 0, 1);
	put(m, "F2", root, "c.csv", 0, 1);
	put(m, "F3", root, "d.csv", 0, 1);
	char seen[64] = "";
	assert_int_equal(
	    meta_children_after(m, root, "b.csv", 2, append_name, seen), 0);
	assert_string_equal(seen, "c.csv/d.csv/");
	seen[0] = '\0';
	assert_int_equal(
	    meta_children_after(m, root, "moved.csv", 5, append_name, seen), 0);
	assert_string_equal(seen, "reports/");
	seen[0] = '\0';
	assert_int_equal(
	    meta_children_after(m, root, NULL, 1, append_name, seen), 0);
	assert_string_equal(seen, "b.csv/");
	assert_int_equal(meta_delete_subtree(m, a), 0);
	uint64_t ino;
	assert_int_equal(meta_ino_of(m, "DF", &ino), -ENOENT);
	assert_int_equal(meta_ino_of(m, "F", &ino), 0);

	assert_int_equal(meta_kv_get(m, "delta_link", NULL), -ENOENT);
	assert_int_equal(
	    meta_kv_set(m, "delta_link", "https://g/delta?token=1"), 0);
	meta_close(m);

	/* Reopen: inodes and values persist; a new item never reuses an old
	 * inode number (AUTOINCREMENT). */
	m = meta_open(path, "b!drive", &err);
	assert_non_null(m);
	assert_int_equal(meta_ino_of(m, "F", &ino), 0);
	assert_int_equal(ino, f);
	char *v = NULL;
	assert_int_equal(meta_kv_get(m, "delta_link", &v), 0);
	assert_string_equal(v, "https://g/delta?token=1");
	free(v);
	uint64_t fresh = put(m, "NEW", root, "new", 0, 0);
	assert_true(fresh > deep);
	meta_close(m);

	/* A database made for another drive is refused. */
	assert_null(meta_open(path, "b!other", &err));
	assert_int_equal(err, -EINVAL);
}

static int batch_fail(struct meta *m, void *ctx)
{
	(void)ctx;
	put(m, "TX", 0, "in-tx", 0, 0);
	return -EIO;
}

static void test_batch_rolls_back(void **state)
{
	int err;
	uint64_t ino;

	(void)state;
	unlink(path);
	struct meta *m = meta_open(path, "b!drive", &err);
	assert_int_equal(meta_batch(m, batch_fail, NULL), -EIO);
	assert_int_equal(meta_ino_of(m, "TX", &ino), -ENOENT);
	meta_close(m);
}

/* A new, empty store. */
static struct meta *fresh_store(void)
{
	int err;

	unlink(path);
	struct meta *m = meta_open(path, "b!drive", &err);
	assert_non_null(m);
	return m;
}

/* A child with its own mtime (put() gives every item the same one). */
static uint64_t put_at(struct meta *m, const char *id, uint64_t parent,
		       const char *name, time_t mtime)
{
	struct meta_item it = {.item_id = (char *)id,
			       .parent_ino = parent,
			       .name = (char *)name,
			       .mtime = {mtime, 0}};
	uint64_t ino = 0;

	assert_int_equal(meta_upsert(m, &it, &ino), 0);
	return ino;
}

/* Parent cycles already in the store (planted, or written by an older
 * version) end every walk: the subtree delete and the ancestor test
 * terminate, and the ancestor test says which moves would close one. */
static void test_cycles_end_every_walk(void **state)
{
	int n = 0;

	(void)state;
	struct meta *m = fresh_store();
	uint64_t root = put(m, "root", 0, "", 1, 0);
	uint64_t a = put(m, "A", root, "a", 1, 0);
	uint64_t b = put(m, "B", a, "b", 1, 0);
	uint64_t c = put(m, "C", b, "c", 1, 0);
	put(m, "F", c, "f.csv", 0, 3);

	assert_int_equal(meta_is_ancestor(m, a, c), 1);
	assert_int_equal(meta_is_ancestor(m, c, c), 1);
	assert_int_equal(meta_is_ancestor(m, root, c), 1);
	assert_int_equal(meta_is_ancestor(m, c, a), 0);
	assert_int_equal(meta_is_ancestor(m, b, root), 0);

	/* Plant A -> C: A is now below C, which is below A. */
	put(m, "A", c, "a", 1, 0);
	assert_int_equal(meta_is_ancestor(m, root, c), 0);
	assert_int_equal(meta_is_ancestor(m, a, c), 1);
	assert_int_equal(meta_is_ancestor(m, c, a), 1);
	/* Deleting into the loop ends, and takes the loop with it. */
	assert_int_equal(meta_delete_subtree(m, b), 0);
	uint64_t ino;
	assert_int_equal(meta_ino_of(m, "A", &ino), -ENOENT);
	assert_int_equal(meta_ino_of(m, "F", &ino), -ENOENT);
	assert_int_equal(meta_children(m, root, count_child, &n), 0);
	assert_int_equal(n, 0);
	/* A self-parent too. */
	uint64_t s = put(m, "S", root, "s", 1, 0);
	put(m, "S", s, "s", 1, 0);
	assert_int_equal(meta_is_ancestor(m, root, s), 0);
	assert_int_equal(meta_delete_subtree(m, s), 0);
	assert_int_equal(meta_ino_of(m, "S", &ino), -ENOENT);
	meta_close(m);
}

/* Two children of one name: one entry, the newest (then the greatest id),
 * in lookups and listings alike; the other comes back when it goes. */
static void test_one_entry_per_name(void **state)
{
	char names[256] = "";
	struct meta_item it;

	(void)state;
	struct meta *m = fresh_store();
	uint64_t root = put(m, "root", 0, "", 1, 0);
	put_at(m, "OLD", root, "same.csv", 1000);
	uint64_t newer = put_at(m, "NEW", root, "same.csv", 2000);
	put_at(m, "TIE-A", root, "tie.csv", 3000);
	put_at(m, "TIE-B", root, "tie.csv", 3000);
	put_at(m, "X", root, "x.csv", 1);

	assert_int_equal(meta_lookup(m, root, "same.csv", &it), 0);
	assert_string_equal(it.item_id, "NEW");
	meta_item_release(&it);
	assert_int_equal(meta_lookup(m, root, "tie.csv", &it), 0);
	assert_string_equal(it.item_id, "TIE-B");
	meta_item_release(&it);
	assert_int_equal(meta_children(m, root, append_name, names), 0);
	assert_string_equal(names, "same.csv/tie.csv/x.csv/");
	names[0] = '\0';
	assert_int_equal(
	    meta_children_after(m, root, "same.csv", 1, append_name, names), 0);
	assert_string_equal(names, "tie.csv/");

	assert_int_equal(meta_delete_subtree(m, newer), 0);
	assert_int_equal(meta_lookup(m, root, "same.csv", &it), 0);
	assert_string_equal(it.item_id, "OLD");
	meta_item_release(&it);
	meta_close(m);
}

/* A listing stored page by page: the children not seen are swept (with
 * what is below them), the folder itself never, even through a planted
 * loop; a listing given up leaves the store as it was. */
static void test_listing_sweep(void **state)
{
	int n = 0;
	uint64_t ino;

	(void)state;
	struct meta *m = fresh_store();
	uint64_t root = put(m, "root", 0, "", 1, 0);
	uint64_t keep = put(m, "KEEP", root, "keep", 1, 0);
	uint64_t gone = put(m, "GONE", root, "gone", 1, 0);
	put(m, "UNDER", gone, "under.csv", 0, 1);

	assert_int_equal(meta_listing_seen(m, root, keep), 0);
	assert_int_equal(meta_listing_forget(m, root), 0);
	assert_int_equal(meta_children(m, root, count_child, &n), 0);
	assert_int_equal(n, 2);

	assert_int_equal(meta_listing_seen(m, root, keep), 0);
	assert_int_equal(meta_listing_seen(m, root, keep), 0);
	assert_int_equal(meta_listing_sweep(m, root), 0);
	assert_int_equal(meta_ino_of(m, "GONE", &ino), -ENOENT);
	assert_int_equal(meta_ino_of(m, "UNDER", &ino), -ENOENT);
	assert_int_equal(meta_ino_of(m, "KEEP", &ino), 0);

	/* The marks were forgotten: a second sweep with none sweeps all but
	 * the folder, which a planted loop puts below its own child. */
	put(m, "root", keep, "", 1, 0);
	assert_int_equal(meta_listing_sweep(m, root), 0);
	assert_int_equal(meta_ino_of(m, "KEEP", &ino), -ENOENT);
	assert_int_equal(meta_ino_of(m, "root", &ino), 0);
	meta_close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_items_and_inodes),
	    cmocka_unit_test(test_batch_rolls_back),
	    cmocka_unit_test(test_cycles_end_every_walk),
	    cmocka_unit_test(test_one_entry_per_name),
	    cmocka_unit_test(test_listing_sweep),
	};
	log_set_level(LOG_ERROR);
	log_set_fd(-1);
	return cmocka_run_group_tests(tests, setup, teardown);
}
