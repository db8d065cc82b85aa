/* SPDX-License-Identifier: MIT */
/* The JSON parse-cost estimate: what it counts, and that it stays above
 * what json-c really allocates for the shapes a hostile service sends. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_cost.h"

static size_t cost(const char *s)
{
	return json_cost(s, strlen(s));
}

static void test_counts(void **state)
{
	(void)state;
	assert_int_equal(cost(""), 0);
	assert_int_equal(cost("{}"), 2 + 800);
	assert_int_equal(cost("[1, 22, true]"), 13 + 800 + 300);
	/* Keys count as scalars; braces, brackets and quotes inside strings
	 * (escaped quotes too) count for nothing. */
	assert_int_equal(cost("{\"a{[\":\"b\\\"}]\"}"), 15 + 800 + 200);
	assert_int_equal(cost("{\"a\":-1.5e3,\"b\":null}"), 21 + 800 + 400);
	/* A string left open runs to the end; a trailing backslash too. */
	assert_int_equal(cost("[\"abc{{{"), 8 + 800 + 100);
	assert_int_equal(cost("\"\\"), 2 + 100);
}

/* Bytes json-c keeps allocated for the tree of text. */
static size_t parsed_bytes(const char *text)
{
	struct mallinfo2 before = mallinfo2();
	struct json_object *o = json_tokener_parse(text);
	struct mallinfo2 after = mallinfo2();

	assert_non_null(o);
	json_object_put(o);
	return after.uordblks > before.uordblks
		   ? after.uordblks - before.uordblks
		   : 0;
}

/* A text of n copies of element in a "value" array. */
static char *page_of(const char *element, size_t n)
{
	size_t el = strlen(element);
	char *s = malloc(n * (el + 1) + 32);
	size_t p = (size_t)sprintf(s, "{\"value\":[");

	assert_non_null(s);
	for (size_t i = 0; i < n; i++) {
		memcpy(s + p, element, el);
		p += el;
		s[p++] = ',';
	}
	strcpy(s + p - 1, "]}");
	return s;
}

static void test_above_what_json_c_takes(void **state)
{
	static const char *const shapes[] = {
	    "{}",
	    "[]",
	    "1",
	    "\"abcdefghijklmnopqrstuvwxyz0123456789\"",
	    "{\"a\":1}",
	    "[[[]]]",
	    "{\"id\":\"01ABCDEFGHIJKLMNOPQRSTUVWXYZ234567\",\"name\":\"q1."
	    "csv\","
	    "\"size\":12345,\"eTag\":\"\\\"{EDD00CE7},1\\\"\","
	    "\"parentReference\":"
	    "{\"driveId\":\"b!6SQl0y4WHkS2P5Me\",\"id\":\"01YT2AIJRQLV\"},"
	    "\"file\":{\"mimeType\":\"text/csv\",\"hashes\":{\"quickXorHash\":"
	    "\"CvYQxN7MCGrIsdrA38c6wWhOu5g=\"}},\"fileSystemInfo\":{"
	    "\"lastModifiedDateTime\":\"2021-03-11T18:49:47Z\"}}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		char *text = page_of(shapes[i], 20000);
		size_t used = parsed_bytes(text);
		size_t est = cost(text);
		/* Under ASan mallinfo2 says nothing (used 0): only the
		 * plain build measures. */
		if (used > est)
			fail_msg("%s: json-c took %zu bytes, estimated %zu",
				 shapes[i], used, est);
		free(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts),
	    cmocka_unit_test(test_above_what_json_c_takes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
