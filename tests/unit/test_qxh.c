/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/qxh.h"

/* Vectors from PROTOCOL.md §10 (checked there against rclone's test set). */
static void expect_hash(const void *data, size_t n, size_t chunk,
			const char *want)
{
	struct qxh h, hc;
	char got[QXH_B64_LEN + 1];
	const unsigned char *p = data;
	unsigned char *copy = malloc(n ? n : 1);

	qxh_init(&h);
	qxh_init(&hc);
	for (size_t off = 0; off < n; off += chunk) {
		size_t k = n - off < chunk ? n - off : chunk;
		qxh_update(&h, p + off, k);
		/* The copying variant: the same hash, and the bytes copied. */
		qxh_update_copy(&hc, copy + off, p + off, k);
	}
	qxh_final_b64(&h, got);
	assert_string_equal(got, want);
	qxh_final_b64(&hc, got);
	assert_string_equal(got, want);
	assert_memory_equal(copy, data, n);
	free(copy);
}

static void expect_all_chunkings(const void *data, size_t n, const char *want)
{
	static const size_t chunks[] = {1, 3, 7, 159, 160, 161, 1000, 4096};

	expect_hash(data, n, n ? n : 1, want);
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
		expect_hash(data, n, chunks[i], want);
}

static void test_short_vectors(void **state)
{
	const unsigned char b4a[] = {0x4a};
	const unsigned char bb5b4[] = {0xb5, 0xb4};
	const char *fox = "The quick brown fox jumps over the lazy dog";

	(void)state;
	expect_all_chunkings("", 0, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	expect_all_chunkings(b4a, 1, "SgAAAAAAAAAAAAAAAQAAAAAAAAA=");
	expect_all_chunkings(bb5b4, 2, "taAFAAAAAAAAAAAAAgAAAAAAAAA=");
	expect_all_chunkings("a", 1, "YQAAAAAAAAAAAAAAAQAAAAAAAAA=");
	expect_all_chunkings("abc", 3, "YRDDGAAAAAAAAAAAAwAAAAAAAAA=");
	expect_all_chunkings("hello world", 11, "aCgDG9jwBhDc4Q1yawMZAAAAAAA=");
	expect_all_chunkings(fox, strlen(fox), "bMSlbysmxJL6S75XwfMcQZOpcr4=");
}

static void test_length_fold(void **state)
{
	size_t n = 1024 * 1024;
	unsigned char *zeros = calloc(1, n);

	(void)state;
	assert_non_null(zeros);
	expect_hash(zeros, n, n, "AAAAAAAAAAAAAAAAAAAQAAAAAAA=");
	expect_hash(zeros, n, 65537, "AAAAAAAAAAAAAAAAAAAQAAAAAAA=");
	free(zeros);
}

static void test_crosses_period(void **state)
{
	unsigned char data[4000];

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i % 256);
	expect_all_chunkings(data, sizeof(data),
			     "/+EGLlnQi0dVs5OErXqhEnz5wg4=");
}

/* Parts hashed at their offsets, merged in reverse order, give the hash of
 * the whole: how the content cache verifies chunks fetched out of order. */
static void test_parts_merge_in_any_order(void **state)
{
	unsigned char data[4000];
	static const size_t sizes[] = {1, 7, 160, 333, 1024};

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i % 256);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t part = sizes[k];
		struct qxh whole;
		char got[QXH_B64_LEN + 1];

		qxh_init(&whole);
		size_t off = sizeof(data);
		while (off > 0) {
			size_t start = (off - 1) / part * part;
			struct qxh p;
			qxh_init_at(&p, start);
			qxh_update(&p, data + start, off - start);
			qxh_merge(&whole, p.fold);
			off = start;
		}
		whole.length = sizeof(data);
		qxh_final_b64(&whole, got);
		assert_string_equal(got, "/+EGLlnQi0dVs5OErXqhEnz5wg4=");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_short_vectors),
	    cmocka_unit_test(test_length_fold),
	    cmocka_unit_test(test_crosses_period),
	    cmocka_unit_test(test_parts_merge_in_any_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
