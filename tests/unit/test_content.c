/* SPDX-License-Identifier: MIT */
/* The sqlite content store, on a real database file. */
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
#include "base/qxh.h"
#include "cache/content.h"

static char dir[] = "/tmp/spfs-test-content-XXXXXX";
static char path[256];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/lib.content.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)((i * 131u + seed * 7u) >> 3);
}

static void test_put_read_exact(void **state)
{
	enum { N = 1 << 20 };
	unsigned char *in = malloc(N), *out = malloc(N);
	size_t len;
	int err;

	(void)state;
	unlink(path);
	struct content *c = content_open(path, 64u << 20, &err);
	assert_non_null(c);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	fill(in, N, 1);
	assert_int_equal(content_put(c, "ITEM", "\"c:{X},1\"", 0, in, N, NULL),
			 0);
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},1\"", 0, 0, out, N, &len), 0);
	assert_int_equal(len, N);
	assert_memory_equal(in, out, N);
	/* Partial reads at odd offsets. */
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},1\"", 0, 12345, out, 777, &len),
	    0);
	assert_int_equal(len, 777);
	assert_memory_equal(in + 12345, out, 777);
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},1\"", 0, N - 10, out, 100, &len),
	    0);
	assert_int_equal(len, 10);
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},1\"", 0, N, out, 100, &len), 0);
	assert_int_equal(len, 0);
	/* Another version or index is another chunk. */
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},2\"", 0, 0, out, N, &len),
	    -ENOENT);
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},1\"", 1, 0, out, N, &len),
	    -ENOENT);

	/* Replacing a chunk keeps the accounting right. */
	assert_int_equal(
	    content_put(c, "ITEM", "\"c:{X},1\"", 0, in, 100, NULL), 0);
	struct content_stats s;
	content_get_stats(c, &s);
	assert_int_equal(s.bytes, 100);
	assert_int_equal(s.chunks, 1);

	/* Dropping old versions keeps the current one. */
	assert_int_equal(content_put(c, "ITEM", "\"c:{X},2\"", 0, in, 50, NULL),
			 0);
	assert_int_equal(content_drop_item(c, "ITEM", "\"c:{X},2\""), 0);
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},1\"", 0, 0, out, N, &len),
	    -ENOENT);
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},2\"", 0, 0, out, N, &len), 0);
	assert_int_equal(len, 50);
	content_close(c);

	/* Reopen: the bytes and the accounting survive. */
	c = content_open(path, 64u << 20, &err);
	assert_non_null(c);
	content_get_stats(c, &s);
	assert_int_equal(s.bytes, 50);
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},2\"", 0, 0, out, N, &len), 0);
	assert_memory_equal(in, out, 50);
	content_close(c);
	free(in);
	free(out);
}

static void test_lru_eviction_spares_pinned(void **state)
{
	unsigned char buf[4096], out[4096];
	size_t len;
	int err;

	(void)state;
	unlink(path);
	/* Room for 8 chunks of 4 KiB. */
	struct content *c = content_open(path, 8 * 4096, &err);
	assert_non_null(c);
	char item[16];
	for (unsigned i = 0; i < 12; i++) {
		snprintf(item, sizeof(item), "I%u", i);
		fill(buf, sizeof(buf), i);
		assert_int_equal(
		    content_put(c, item, "v", 0, buf, sizeof(buf), NULL), 0);
	}
	/* I0 is open, I1 was just read: both must survive. */
	content_pin(c, "I0");
	assert_int_equal(
	    content_read(c, "I1", "v", 0, 0, out, sizeof(out), &len), 0);
	long n = content_evict(c);
	assert_int_equal(n, 4);
	struct content_stats s;
	content_get_stats(c, &s);
	assert_true(s.bytes <= 8 * 4096);
	assert_int_equal(s.evicted, 4);
	assert_int_equal(
	    content_read(c, "I0", "v", 0, 0, out, sizeof(out), &len), 0);
	fill(buf, sizeof(buf), 0);
	assert_memory_equal(buf, out, sizeof(out));
	assert_int_equal(
	    content_read(c, "I1", "v", 0, 0, out, sizeof(out), &len), 0);
	/* The oldest unpinned ones went first. */
	for (unsigned i = 2; i < 6; i++) {
		snprintf(item, sizeof(item), "I%u", i);
		assert_int_equal(
		    content_read(c, item, "v", 0, 0, out, sizeof(out), &len),
		    -ENOENT);
	}
	assert_int_equal(
	    content_read(c, "I11", "v", 0, 0, out, sizeof(out), &len), 0);
	/* Under the cap: nothing to do. */
	assert_int_equal(content_evict(c), 0);
	/* Pinned chunks alone over the cap: the cap wins, oldest first. */
	for (unsigned i = 0; i < 12; i++) {
		fill(buf, sizeof(buf), i);
		assert_int_equal(
		    content_put(c, "I0", "v", i, buf, sizeof(buf), NULL), 0);
	}
	assert_true(content_evict(c) > 0);
	content_get_stats(c, &s);
	assert_true(s.bytes <= 8 * 4096);
	assert_int_equal(
	    content_read(c, "I0", "v", 0, 0, out, sizeof(out), &len), -ENOENT);
	assert_int_equal(
	    content_read(c, "I0", "v", 11, 0, out, sizeof(out), &len), 0);
	fill(buf, sizeof(buf), 11);
	assert_memory_equal(buf, out, sizeof(out));
	content_unpin(c, "I0");
	content_close(c);
}

/* Folds, file rows and version drops: what the reader verifies with. */
static void test_folds_and_file_rows(void **state)
{
	unsigned char data[3000], fold[CONTENT_FOLD_LEN];
	int err;

	(void)state;
	unlink(path);
	struct content *c = content_open(path, 1u << 20, &err);
	assert_non_null(c);
	fill(data, sizeof(data), 9);
	/* Three chunks of 1000 bytes, stored out of order with their folds. */
	for (int k = 2; k >= 0; k--) {
		struct qxh h;
		qxh_init_at(&h, (uint64_t)k * 1000);
		qxh_update(&h, data + k * 1000, 1000);
		if (k == 1)
			assert_int_equal(content_fold(c, "F", "v1", 3, fold),
					 -ENOENT); /* chunk 0 missing */
		assert_int_equal(content_put(c, "F", "v1", (uint64_t)k,
					     data + k * 1000, 1000, h.fold),
				 0);
	}
	assert_int_equal(content_has(c, "F", "v1", 2), 1);
	assert_int_equal(content_has(c, "F", "v1", 3), 0);
	assert_int_equal(content_fold(c, "F", "v1", 3, fold), 0);
	struct qxh merged, whole;
	qxh_init(&merged);
	qxh_merge(&merged, fold);
	merged.length = sizeof(data);
	qxh_init(&whole);
	qxh_update(&whole, data, sizeof(data));
	char a[QXH_B64_LEN + 1], b[QXH_B64_LEN + 1];
	qxh_final_b64(&merged, a);
	qxh_final_b64(&whole, b);
	assert_string_equal(a, b);

	/* A chunk stored without its fold cannot complete a verification. */
	assert_int_equal(content_put(c, "G", "v1", 0, data, 10, NULL), 0);
	assert_int_equal(content_fold(c, "G", "v1", 1, fold), -ENOENT);

	struct content_file row = {
	    .size = 3000, .verified = 1, .mismatches = 1};
	struct content_file got;
	assert_int_equal(content_file_get(c, "F", "v1", &got), -ENOENT);
	assert_int_equal(content_file_set(c, "F", "v1", &row), 0);
	assert_int_equal(content_file_get(c, "F", "v1", &got), 0);
	assert_int_equal(got.size, 3000);
	assert_int_equal(got.verified, 1);
	assert_int_equal(got.mismatches, 1);

	/* Dropping the version drops its chunks, keeps its row. */
	assert_int_equal(content_drop_version(c, "F", "v1"), 0);
	assert_int_equal(content_has(c, "F", "v1", 0), 0);
	assert_int_equal(content_file_get(c, "F", "v1", &got), 0);
	struct content_stats st;
	content_get_stats(c, &st);
	assert_int_equal(st.chunks, 1); /* G's */
	/* A newer version makes the old rows go. */
	assert_int_equal(content_drop_item(c, "F", "v2"), 0);
	assert_int_equal(content_file_get(c, "F", "v1", &got), -ENOENT);
	content_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_read_exact),
	    cmocka_unit_test(test_lru_eviction_spares_pinned),
	    cmocka_unit_test(test_folds_and_file_rows),
	};
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
