/* SPDX-License-Identifier: MIT */
/* The CSV writer (layout, quoting, batching) and shortest numbers. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sheets/csv.h"
#include "sheets/number.h"

struct out {
	char *data;
	size_t len;
	int calls;
	int fail_at; /* 0: never */
};

static int sink(void *ctx, const char *data, size_t len)
{
	struct out *o = ctx;

	if (++o->calls == o->fail_at)
		return -ENOSPC;
	o->data = realloc(o->data, o->len + len + 1);
	memcpy(o->data + o->len, data, len);
	o->len += len;
	o->data[o->len] = '\0';
	return 0;
}

static void test_layout_pads_rows_and_keeps_empty_lines(void **state)
{
	struct csv w;
	struct out o = {0};

	(void)state;
	csv_init(&w, 4, sink, &o);
	assert_int_equal(csv_cell(&w, 1, 1, "b2", 2, 1), 0);
	assert_int_equal(csv_cell(&w, 1, 3, "d2", 2, 1), 0);
	assert_int_equal(csv_cell(&w, 4, 0, "a5", 2, 1), 0);
	assert_int_equal(csv_cell(&w, 4, 2, "", 0, 1), 0); /* no value */
	assert_int_equal(csv_finish(&w), 0);
	/* Rows 1, 3, 4 empty; every valued row has 4 fields. */
	assert_string_equal(o.data, "\n,b2,,d2\n\n\na5,,,\n");
	assert_int_equal(w.bytes, o.len);
	free(o.data);
}

static void test_quoting_rfc4180(void **state)
{
	struct csv w;
	struct out o = {0};

	(void)state;
	csv_init(&w, 5, sink, &o);
	assert_int_equal(csv_cell(&w, 0, 0, "a,b", 3, 1), 0);
	assert_int_equal(csv_cell(&w, 0, 1, "say \"hi\"", 8, 1), 0);
	assert_int_equal(csv_cell(&w, 0, 2, "l1\nl2", 5, 1), 0);
	assert_int_equal(csv_cell(&w, 0, 3, "cr\r", 3, 1), 0);
	assert_int_equal(csv_cell(&w, 0, 4, " plain ", 7, 1), 0);
	assert_int_equal(csv_finish(&w), 0);
	assert_string_equal(o.data,
			    "\"a,b\",\"say \"\"hi\"\"\",\"l1\nl2\",\"cr\r\", "
			    "plain \n");
	free(o.data);
}

static void test_order_and_width_are_enforced(void **state)
{
	struct csv w;
	struct out o = {0};

	(void)state;
	csv_init(&w, 2, sink, &o);
	assert_int_equal(csv_cell(&w, 3, 1, "x", 1, 0), 0);
	assert_int_equal(csv_cell(&w, 3, 1, "y", 1, 0), -ERANGE);
	assert_int_equal(csv_cell(&w, 2, 0, "y", 1, 0), -ERANGE);
	assert_int_equal(csv_cell(&w, 4, 2, "y", 1, 0), -ERANGE);
	assert_int_equal(csv_finish(&w), 0);
	assert_string_equal(o.data, "\n\n\n,x\n");
	free(o.data);
}

static void test_large_output_is_batched_and_sink_errors_surface(void **state)
{
	struct csv w;
	struct out o = {0};
	char cell[1000];

	(void)state;
	memset(cell, 'x', sizeof(cell));
	csv_init(&w, 1, sink, &o);
	for (uint32_t r = 0; r < 1000; r++)
		assert_int_equal(csv_cell(&w, r, 0, cell, sizeof(cell), 1), 0);
	assert_int_equal(csv_finish(&w), 0);
	assert_int_equal(o.len, 1000 * 1001);
	/* 64 KiB writes, not one per cell */
	assert_true(o.calls <= 1000 * 1001 / (64 * 1024) + 1);
	free(o.data);

	struct out f = {.fail_at = 2};
	csv_init(&w, 1, sink, &f);
	int err = 0;
	for (uint32_t r = 0; r < 1000 && !err; r++)
		err = csv_cell(&w, r, 0, cell, sizeof(cell), 1);
	assert_int_equal(err, -ENOSPC);
	free(f.data);
}

static void fmt(double x, const char *want)
{
	char out[NUMBER_TEXT_MAX];

	number_format(x, out);
	assert_string_equal(out, want);
}

static void test_number_layout(void **state)
{
	(void)state;
	fmt(0, "0");
	fmt(-0.0, "0");
	fmt(1, "1");
	fmt(-2.5, "-2.5");
	fmt(0.1, "0.1");
	fmt(1.0 / 3, "0.3333333333333333");
	fmt(631.07, "631.07");
	fmt(1e6, "1000000");
	fmt(123456789012345678.0, "123456789012345680");
	fmt(1e20, "100000000000000000000");
	fmt(1e21, "1e+21");
	fmt(1.5e300, "1.5e+300");
	fmt(0.000001, "0.000001");
	fmt(1e-7, "1e-7");
	fmt(-1.25e-10, "-1.25e-10");
	fmt(5e-324, "5e-324");
	fmt(1.7976931348623157e308, "1.7976931348623157e+308");
	fmt(0.30000000000000004, "0.30000000000000004");
}

/* Random doubles: the text reads back exactly, and one digit fewer
 * (rounded either way) does not. */
static void test_number_shortest_round_trip(void **state)
{
	char out[NUMBER_TEXT_MAX];
	uint64_t seed = 88172645463325252ull;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		double x;
		uint64_t bits = seed;
		memcpy(&x, &bits, sizeof(x));
		if (!isfinite(x))
			continue;
		if (i % 2)
			x = (double)(seed % 100000000) / 100.0;
		number_format(x, out);
		assert_true(strtod(out, NULL) == x);
		char sci[40];
		snprintf(sci, sizeof(sci), "%.17e", x);
		/* Count the significant digits written. */
		int digits = 0, started = 0;
		for (const char *p = out; *p && *p != 'e'; p++)
			if (*p >= '1' && *p <= '9')
				started = 1, digits++;
			else if (*p == '0' && started)
				digits++;
		/* trailing zeros of an integer are layout, not digits */
		if (!strchr(out, '.') && !strchr(out, 'e'))
			for (const char *p = out + strlen(out) - 1;
			     p > out && *p == '0'; p--)
				digits--;
		if (digits > 1) {
			char shorter[40];
			snprintf(shorter, sizeof(shorter), "%.*e", digits - 2,
				 x);
			assert_true(strtod(shorter, NULL) != x);
		}
	}
}

static void parse(const char *text, const char *want, double value)
{
	char out[NUMBER_TEXT_MAX];
	double x;
	size_t n;

	assert_int_equal(number_parse_format(text, strlen(text), &x, out, &n),
			 0);
	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
	assert_true(x == value);
}

static void test_number_from_cell_text(void **state)
{
	char out[NUMBER_TEXT_MAX];
	double x;
	size_t n;

	(void)state;
	parse("42", "42", 42);
	parse("-0", "0", 0);
	parse("0.10000000000000001", "0.1", 0.1);
	parse("631.07000000000005", "631.07", 631.07);
	parse("1.5E+3", "1500", 1500);
	parse("2.5e-3", "0.0025", 0.0025);
	parse("000123.4500", "123.45", 123.45);
	parse("1.234567890123457e+17", "123456789012345700",
	      1.234567890123457e+17);
	parse(".5", "0.5", 0.5);
	parse("1E-400", "0", 0);
	/* Without the value: the same text, the same refusals. */
	const char *same[] = {
	    "42",     "-0",    "0.10000000000000001",	"1E-400",
	    "2.5e-3", "1e308", "1.7976931348623157e308"};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		char want[NUMBER_TEXT_MAX];
		assert_int_equal(
		    number_parse_format(same[i], strlen(same[i]), &x, want, &n),
		    0);
		assert_int_equal(number_parse_format(same[i], strlen(same[i]),
						     NULL, out, &n),
				 0);
		assert_string_equal(out, want);
	}
	assert_int_equal(number_parse_format("1e309", 5, NULL, out, &n),
			 -EINVAL);
	const char *bad[] = {"",      "-",     "1e",  "1e+", "abc",
			     "1.2.3", "0x10",  "inf", "nan", " 1",
			     "1 ",    "1e999", "--1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    number_parse_format(bad[i], strlen(bad[i]), &x, out, &n),
		    -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout_pads_rows_and_keeps_empty_lines),
	    cmocka_unit_test(test_quoting_rfc4180),
	    cmocka_unit_test(test_order_and_width_are_enforced),
	    cmocka_unit_test(
		test_large_output_is_batched_and_sink_errors_surface),
	    cmocka_unit_test(test_number_layout),
	    cmocka_unit_test(test_number_shortest_round_trip),
	    cmocka_unit_test(test_number_from_cell_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
