/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "http/content_range.h"

static void ok(const char *v, long long first, long long last, long long total)
{
	struct http_content_range r;

	assert_int_equal(http_content_range_parse(v, &r), 0);
	assert_int_equal(r.first, first);
	assert_int_equal(r.last, last);
	assert_int_equal(r.total, total);
}

static void bad(const char *v)
{
	struct http_content_range r;

	assert_int_equal(http_content_range_parse(v, &r), -EINVAL);
}

static void test_accepts(void **state)
{
	(void)state;
	ok("bytes 0-99/100", 0, 99, 100);
	ok("bytes 4194304-8388607/67108864", 4194304, 8388607, 67108864);
	ok("bytes 5-5/*", 5, 5, -1);
	ok("bytes */6360", -1, -1, 6360);
	ok("bytes */0", -1, -1, 0);
	ok("Bytes  0-0/1 ", 0, 0, 1);
}

static void test_refuses(void **state)
{
	(void)state;
	bad(NULL);
	bad("");
	bad("bytes");
	bad("bytes0-1/2");
	bad("items 0-1/2");
	bad("bytes 1-0/2");	/* last before first */
	bad("bytes 0-99/99");	/* total not past last */
	bad("bytes -1-5/10");	/* sign */
	bad("bytes +1-5/10");	/* sign */
	bad("bytes 0 -5/10");	/* space inside */
	bad("bytes */*");	/* says nothing */
	bad("bytes 0-5/10, 7"); /* trailing junk */
	bad("bytes 0-5");
	bad("bytes 0-1234567890123456789/9999999999999999999"); /* overflow */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepts),
	    cmocka_unit_test(test_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
