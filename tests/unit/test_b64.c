/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "base/b64.h"

static void check_round_trip(const char *plain, const char *std,
			     const char *url)
{
	char out[256];
	unsigned char back[256];
	size_t n = strlen(plain);

	assert_int_equal(b64_encoded_len(n, B64_STD), strlen(std));
	b64_encode(plain, n, out, B64_STD);
	assert_string_equal(out, std);
	b64_encode(plain, n, out, B64_URL);
	assert_string_equal(out, url);

	assert_int_equal(b64_decode(std, strlen(std), back, B64_STD), (long)n);
	assert_memory_equal(back, plain, n);
	assert_int_equal(b64_decode(url, strlen(url), back, B64_URL), (long)n);
	assert_memory_equal(back, plain, n);
}

static void test_rfc4648_vectors(void **state)
{
	(void)state;
	check_round_trip("", "", "");
	check_round_trip("f", "Zg==", "Zg");
	check_round_trip("fo", "Zm8=", "Zm8");
	check_round_trip("foo", "Zm9v", "Zm9v");
	check_round_trip("foob", "Zm9vYg==", "Zm9vYg");
	check_round_trip("fooba", "Zm9vYmE=", "Zm9vYmE");
	check_round_trip("foobar", "Zm9vYmFy", "Zm9vYmFy");
}

static void test_url_alphabet(void **state)
{
	const unsigned char raw[] = {0xfb, 0xff, 0xbf};
	char out[8];
	unsigned char back[8];

	(void)state;
	b64_encode(raw, 3, out, B64_STD);
	assert_string_equal(out, "+/+/");
	b64_encode(raw, 3, out, B64_URL);
	assert_string_equal(out, "-_-_");
	/* Each alphabet refuses the other's specials. */
	assert_int_equal(b64_decode("+/+/", 4, back, B64_URL), -EINVAL);
	assert_int_equal(b64_decode("-_-_", 4, back, B64_STD), -EINVAL);
}

static void test_url_padding_optional(void **state)
{
	unsigned char back[8];

	(void)state;
	assert_int_equal(b64_decode("Zg==", 4, back, B64_URL), 1);
	assert_int_equal(b64_decode("Zg", 2, back, B64_URL), 1);
	/* Standard alphabet insists on padding. */
	assert_int_equal(b64_decode("Zg", 2, back, B64_STD), -EINVAL);
}

static void test_rejects_malformed(void **state)
{
	unsigned char back[16];

	(void)state;
	assert_int_equal(b64_decode("Z", 1, back, B64_URL), -EINVAL);
	assert_int_equal(b64_decode("Zm9v!", 5, back, B64_URL), -EINVAL);
	assert_int_equal(b64_decode("Zm 9v", 5, back, B64_STD), -EINVAL);
	assert_int_equal(b64_decode("Z===", 4, back, B64_STD), -EINVAL);
	assert_int_equal(b64_decode("Zg=", 3, back, B64_STD), -EINVAL);
	assert_int_equal(b64_decode("Zg=a", 4, back, B64_STD), -EINVAL);
	/* Non-zero trailing bits: "Zh" would also decode to "f". */
	assert_int_equal(b64_decode("Zh", 2, back, B64_URL), -EINVAL);
	assert_int_equal(b64_decode("Zm9=", 4, back, B64_STD), -EINVAL);
}

static void test_all_byte_values(void **state)
{
	unsigned char raw[256], back[256];
	char out[400];

	(void)state;
	for (int i = 0; i < 256; i++)
		raw[i] = (unsigned char)i;
	for (size_t n = 0; n <= sizeof(raw); n += 17) {
		for (int a = B64_STD; a <= B64_URL; a++) {
			b64_encode(raw, n, out, (enum b64_alphabet)a);
			assert_int_equal(
			    strlen(out),
			    b64_encoded_len(n, (enum b64_alphabet)a));
			assert_true(b64_decoded_max(strlen(out)) >= n);
			assert_int_equal(b64_decode(out, strlen(out), back,
						    (enum b64_alphabet)a),
					 (long)n);
			assert_memory_equal(raw, back, n);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4648_vectors),
	    cmocka_unit_test(test_url_alphabet),
	    cmocka_unit_test(test_url_padding_optional),
	    cmocka_unit_test(test_rejects_malformed),
	    cmocka_unit_test(test_all_byte_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
