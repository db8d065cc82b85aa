/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

static void test_append_and_terminate(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_append(&b, "abc", 3), 0);
	assert_int_equal(buf_append_str(&b, "def"), 0);
	assert_int_equal(buf_appendf(&b, "-%d-%s", 42, "x"), 0);
	assert_string_equal(buf_str(&b), "abcdef-42-x");
	assert_int_equal(b.len, 11);
	buf_reset(&b);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void test_limit_is_hard(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "12345678", 8), 0);
	/* A failed append leaves the contents untouched. */
	assert_int_equal(buf_append(&b, "9", 1), -EFBIG);
	assert_string_equal(buf_str(&b), "12345678");
	assert_int_equal(buf_appendf(&b, "%s", "x"), -EFBIG);
	assert_int_equal(b.len, 8);
	buf_release(&b);

	buf_init(&b, 300);
	char big[400];
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(buf_appendf(&b, "%s", big), -EFBIG);
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void test_growth_large_appendf(void **state)
{
	struct buf b;
	char big[1000];

	(void)state;
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_init(&b, 1 << 20);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_appendf(&b, "%s", big), 0);
	assert_int_equal(b.len, 999 * 100);
	assert_int_equal(strlen(buf_str(&b)), 999 * 100);
	buf_release(&b);
}

static void test_detach(void **state)
{
	struct buf b;
	size_t len = 99;

	(void)state;
	buf_init(&b, 64);
	char *empty = buf_detach(&b, &len);
	assert_non_null(empty);
	assert_string_equal(empty, "");
	assert_int_equal(len, 0);
	free(empty);

	buf_init_secret(&b, 64);
	assert_int_equal(buf_append_str(&b, "secret-ish"), 0);
	char *s = buf_detach(&b, &len);
	assert_string_equal(s, "secret-ish");
	assert_int_equal(len, 10);
	assert_null(b.data);
	free(s);
	buf_release(&b);
}

static void test_secret_growth_keeps_bytes(void **state)
{
	struct buf b;

	(void)state;
	buf_init_secret(&b, 4096);
	for (int i = 0; i < 200; i++)
		assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(b.len, 2000);
	for (size_t i = 0; i < b.len; i++)
		assert_int_equal(b.data[i], '0' + (int)(i % 10));
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_and_terminate),
	    cmocka_unit_test(test_limit_is_hard),
	    cmocka_unit_test(test_growth_large_appendf),
	    cmocka_unit_test(test_detach),
	    cmocka_unit_test(test_secret_growth_keeps_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
