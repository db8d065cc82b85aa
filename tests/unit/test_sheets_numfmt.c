/* SPDX-License-Identifier: MIT */
/* Number formats: which are dates, and dates as ISO 8601 in both systems. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sheets/numfmt.h"

static void kind(const char *code, enum numfmt_kind want)
{
	enum numfmt_kind got = numfmt_code_kind(code, strlen(code));

	if (got != want)
		fail_msg("'%s': kind %d, expected %d", code, got, want);
}

static void test_builtin_ids(void **state)
{
	(void)state;
	assert_int_equal(numfmt_builtin_kind(0), NUMFMT_NUMBER);
	assert_int_equal(numfmt_builtin_kind(2), NUMFMT_NUMBER);
	assert_int_equal(numfmt_builtin_kind(14), NUMFMT_DATE);
	assert_int_equal(numfmt_builtin_kind(17), NUMFMT_DATE);
	assert_int_equal(numfmt_builtin_kind(18), NUMFMT_TIME);
	assert_int_equal(numfmt_builtin_kind(21), NUMFMT_TIME);
	assert_int_equal(numfmt_builtin_kind(22), NUMFMT_DATETIME);
	assert_int_equal(numfmt_builtin_kind(45), NUMFMT_TIME);
	assert_int_equal(numfmt_builtin_kind(46), NUMFMT_DURATION);
	assert_int_equal(numfmt_builtin_kind(47), NUMFMT_TIME);
	assert_int_equal(numfmt_builtin_kind(49), NUMFMT_NUMBER);
	assert_int_equal(numfmt_builtin_kind(31), NUMFMT_DATE);
	assert_int_equal(numfmt_builtin_kind(33), NUMFMT_TIME);
	assert_int_equal(numfmt_builtin_kind(164), NUMFMT_NUMBER);
}

static void test_format_codes(void **state)
{
	(void)state;
	kind("General", NUMFMT_NUMBER);
	kind("0.00", NUMFMT_NUMBER);
	kind("#,##0.00 \"days\"", NUMFMT_NUMBER);
	kind("0.00E+00", NUMFMT_NUMBER);
	kind("@", NUMFMT_NUMBER);
	kind("[Red]#,##0;[Blue]-#,##0", NUMFMT_NUMBER);
	kind("\"date: \"0", NUMFMT_NUMBER);
	kind("0\\d", NUMFMT_NUMBER);
	kind("_(* #,##0_);_(* (#,##0);_(* \"-\"_);_(@_)", NUMFMT_NUMBER);
	kind("yyyy-mm-dd", NUMFMT_DATE);
	kind("YYYY-MM-DD", NUMFMT_DATE);
	kind("d-mmm-yy", NUMFMT_DATE);
	kind("mmm yyyy", NUMFMT_DATE);
	kind("[$-409]mmmm d, yyyy;@", NUMFMT_DATE);
	kind("dd/mm/yyyy\\ hh:mm", NUMFMT_DATETIME);
	kind("yyyy-mm-dd hh:mm:ss", NUMFMT_DATETIME);
	kind("m/d/yy h:mm AM/PM", NUMFMT_DATETIME);
	kind("hh:mm", NUMFMT_TIME);
	kind("h:mm:ss AM/PM", NUMFMT_TIME);
	kind("mm:ss", NUMFMT_TIME); /* minutes before seconds */
	kind("mm:ss.0", NUMFMT_TIME);
	kind("[h]:mm:ss", NUMFMT_DURATION);
	kind("[mm]:ss", NUMFMT_DURATION);
	kind("[Red][h]:mm", NUMFMT_DURATION);
	kind("[>=100][Red]0;0", NUMFMT_NUMBER);
	kind("0;yyyy", NUMFMT_NUMBER); /* only the first section counts */
}

static void iso(double v, enum numfmt_kind k, int y1904, const char *want)
{
	char out[NUMFMT_TEXT_MAX];
	size_t n = numfmt_format(v, k, y1904, out);

	if (!want) {
		assert_int_equal(n, 0);
		return;
	}
	out[n] = '\0';
	assert_string_equal(out, want);
}

static void test_dates_1900(void **state)
{
	(void)state;
	iso(1, NUMFMT_DATE, 0, "1900-01-01");
	iso(59, NUMFMT_DATE, 0, "1900-02-28");
	iso(60, NUMFMT_DATE, 0, "1900-02-29"); /* Excel's leap-year bug */
	iso(61, NUMFMT_DATE, 0, "1900-03-01");
	iso(0, NUMFMT_DATE, 0, "1899-12-31");
	iso(36526, NUMFMT_DATE, 0, "2000-01-01");
	iso(45351, NUMFMT_DATE, 0, "2024-02-29");
	iso(2958465, NUMFMT_DATE, 0, "9999-12-31");
	iso(2958466, NUMFMT_DATE, 0, NULL);
	iso(-1, NUMFMT_DATE, 0, NULL);
	iso(45351.5, NUMFMT_DATE, 0, "2024-02-29T12:00:00");
	iso(45351.5, NUMFMT_DATETIME, 0, "2024-02-29T12:00:00");
	iso(45351, NUMFMT_DATETIME, 0, "2024-02-29T00:00:00");
	iso(36525.99998842592, NUMFMT_DATETIME, 0, "1999-12-31T23:59:59");
	/* 23:59:59.9996 rounds to the next midnight */
	iso(36525 + 86399.9996 / 86400, NUMFMT_DATETIME, 0,
	    "2000-01-01T00:00:00");
	iso(36525 + 0.5 / 86400, NUMFMT_DATETIME, 0, "1999-12-31T00:00:00.500");
}

static void test_dates_1904(void **state)
{
	(void)state;
	iso(0, NUMFMT_DATE, 1, "1904-01-01");
	iso(1, NUMFMT_DATE, 1, "1904-01-02");
	iso(34519, NUMFMT_DATE, 1, "1998-07-05");
	iso(0.25, NUMFMT_DATETIME, 1, "1904-01-01T06:00:00");
	iso(2957003, NUMFMT_DATE, 1, "9999-12-31");
	iso(2957004, NUMFMT_DATE, 1, NULL);
}

static void test_times_and_durations(void **state)
{
	(void)state;
	iso(0.5, NUMFMT_TIME, 0, "12:00:00");
	iso(0.52101, NUMFMT_TIME, 0, "12:30:15.264");
	iso(0, NUMFMT_TIME, 0, "00:00:00");
	iso(1.75, NUMFMT_TIME, 0, "1900-01-01T18:00:00");
	iso(1.5, NUMFMT_DURATION, 0, "36:00:00");
	iso(-0.25, NUMFMT_DURATION, 0, "-06:00:00");
	iso(1000.0 / 86400, NUMFMT_DURATION, 0, "00:16:40");
	iso(12, NUMFMT_NUMBER, 0, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_builtin_ids),
	    cmocka_unit_test(test_format_codes),
	    cmocka_unit_test(test_dates_1900),
	    cmocka_unit_test(test_dates_1904),
	    cmocka_unit_test(test_times_and_durations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
