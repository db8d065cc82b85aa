/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "auth/credential.h"

static int parse(const char *body, struct token_grant *g)
{
	token_grant_init(g);
	return token_response_parse(body, strlen(body), 1000, g);
}

static void test_entra_shape(void **state)
{
	struct token_grant g;

	(void)state;
	assert_int_equal(
	    parse("{\"token_type\":\"Bearer\",\"expires_in\":3599,"
		  "\"ext_expires_in\":3599,\"access_token\":\"eyJ.x.y\"}",
		  &g),
	    0);
	assert_string_equal(buf_str(&g.token), "eyJ.x.y");
	assert_int_equal(g.expires_in, 3599);
	assert_int_equal(g.obtained, 1000);
	assert_int_equal(g.refresh_in, 0);
	token_grant_release(&g);

	assert_int_equal(
	    parse("{\"token_type\":\"Bearer\",\"expires_in\":86399,"
		  "\"refresh_in\":43199,\"access_token\":\"t\"}",
		  &g),
	    0);
	assert_int_equal(g.refresh_in, 43199);
	token_grant_release(&g);
}

static void test_imds_shape_strings(void **state)
{
	struct token_grant g;

	(void)state;
	assert_int_equal(
	    parse("{\"access_token\":\"t\",\"refresh_token\":\"\","
		  "\"expires_in\":\"3599\",\"expires_on\":\"4599\","
		  "\"not_before\":\"999\",\"resource\":\"https://"
		  "graph.microsoft.com\","
		  "\"token_type\":\"Bearer\"}",
		  &g),
	    0);
	assert_int_equal(g.expires_in, 3599);
	token_grant_release(&g);

	/* expires_on alone is converted relative to now. */
	assert_int_equal(
	    parse("{\"access_token\":\"t\",\"expires_on\":\"4600\"}", &g), 0);
	assert_int_equal(g.expires_in, 3600);
	token_grant_release(&g);
}

static void test_rejects(void **state)
{
	static const char *const bad[] = {
	    "",
	    "not json",
	    "[]",
	    "{\"expires_in\":3599}",
	    "{\"access_token\":\"\",\"expires_in\":3599}",
	    "{\"access_token\":5,\"expires_in\":3599}",
	    "{\"access_token\":\"t\"}",
	    "{\"access_token\":\"t\",\"expires_in\":\"soon\"}",
	    "{\"access_token\":\"t\",\"expires_in\":-5}",
	    "{\"access_token\":\"t\",\"expires_in\":0}",
	    "{\"access_token\":\"t\",\"expires_on\":\"10\"}",
	    "{\"access_token\":\"t\",\"expires_in\":10,\"token_type\":\"MAC\"}",
	    /* Wrong types and numbers no conversion can hold. */
	    "{\"access_token\":\"t\",\"expires_in\":10,\"token_type\":5}",
	    "{\"access_token\":\"t\",\"expires_in\":10,\"token_type\":{}}",
	    "{\"access_token\":\"t\",\"expires_in\":1e300}",
	    "{\"access_token\":\"t\",\"expires_in\":-1e300}",
	    "{\"access_token\":\"t\",\"expires_in\":NaN}",
	    "{\"access_token\":\"t\",\"expires_in\":\"99999999999999999999\"}",
	    "{\"access_token\":\"t\",\"expires_in\":null}",
	    "{\"access_token\":\"t\",\"expires_in\":10",
	};
	struct token_grant g;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &g), -EINVAL);
		assert_int_equal(g.token.len, 0);
		token_grant_release(&g);
	}
}

/* Lifetimes past any real token are clamped, as numbers and as strings,
 * so obtained + expires_in cannot overflow; refresh_in beyond the lifetime
 * is dropped; a null token_type is no token type (Bearer). */
static void test_hostile_lifetimes_clamped(void **state)
{
	static const char *const huge[] = {
	    "{\"access_token\":\"t\",\"expires_in\":9223372036854775807}",
	    "{\"access_token\":\"t\",\"expires_in\":\"9223372036854775807\"}",
	    "{\"access_token\":\"t\",\"expires_in\":18446744073709551615}",
	    "{\"access_token\":\"t\",\"expires_in\":1e18}",
	    "{\"access_token\":\"t\",\"expires_on\":9223372036854775807}",
	    "{\"access_token\":\"t\",\"expires_on\":\"9223372036854775807\"}",
	};
	struct token_grant g;

	(void)state;
	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		assert_int_equal(parse(huge[i], &g), 0);
		assert_int_equal(g.expires_in, TOKEN_LIFETIME_MAX);
		assert_true(g.obtained + g.expires_in > g.obtained);
		token_grant_release(&g);
	}
	assert_int_equal(parse("{\"access_token\":\"t\",\"expires_in\":3599,"
			       "\"refresh_in\":9223372036854775807,"
			       "\"token_type\":null}",
			       &g),
			 0);
	assert_int_equal(g.expires_in, 3599);
	assert_int_equal(g.refresh_in, 0);
	token_grant_release(&g);
	assert_int_equal(
	    parse("{\"access_token\":\"t\",\"expires_in\":3599.9}", &g), 0);
	assert_int_equal(g.expires_in, 3599);
	token_grant_release(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_entra_shape),
	    cmocka_unit_test(test_imds_shape_strings),
	    cmocka_unit_test(test_rejects),
	    cmocka_unit_test(test_hostile_lifetimes_clamped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
