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
	assert_int_equal(content_put(c, "ITEM", "\"c:{X},1\"", 0, in, N), 0);
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
	assert_int_equal(content_put(c, "ITEM", "\"c:{X},1\"", 0, in, 100), 0);
	struct content_stats s;
	content_get_stats(c, &s);
	assert_int_equal(s.bytes, 100);
	assert_int_equal(s.chunks, 1);

	/* Dropping old versions keeps the current one. */
	assert_int_equal(content_put(c, "ITEM", "\"c:{X},2\"", 0, in, 50), 0);
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
		assert_int_equal(content_put(c, item, "v", 0, buf, sizeof(buf)),
				 0);
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
	content_unpin(c, "I0");
	content_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_read_exact),
	    cmocka_unit_test(test_lru_eviction_spares_pinned),
	};
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
