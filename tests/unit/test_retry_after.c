/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "http/retry_after.h"

static void test_seconds(void **state)
{
	double s;

	(void)state;
	assert_int_equal(http_retry_after_parse("120", 0, &s), 0);
	assert_true(s == 120.0);
	assert_int_equal(http_retry_after_parse(" 0 ", 0, &s), 0);
	assert_true(s == 0.0);
	assert_int_equal(http_retry_after_parse("99999999999999999999", 0, &s),
			 0);
	assert_true(s == 3600.0);
}

static void test_dates(void **state)
{
	/* 1994-11-06 08:49:37 UTC = 784111777 */
	double s;

	(void)state;
	assert_int_equal(http_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT",
						784111777 - 30, &s),
			 0);
	assert_true(s == 30.0);
	assert_int_equal(
	    http_retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT",
				   784111777 - 5, &s),
	    0);
	assert_true(s == 5.0);
	assert_int_equal(http_retry_after_parse("Sun Nov  6 08:49:37 1994",
						784111777 - 1, &s),
			 0);
	assert_true(s == 1.0);
	/* A date in the past means "now". */
	assert_int_equal(http_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT",
						784111777 + 99, &s),
			 0);
	assert_true(s == 0.0);
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {"",
					  "soon",
					  "-5",
					  "1.5",
					  "12abc",
					  "Sun, 06 Nov 1994 08:49:37 GMT x",
					  "Sun, 32 Nov 1994 08:49:37 GMT"};
	double s;

	(void)state;
	assert_int_equal(http_retry_after_parse(NULL, 0, &s), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(http_retry_after_parse(bad[i], 0, &s),
				 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seconds),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
