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

#include "auth/jwt.h"
#include "base/b64.h"

/* Builds header.payload.sig from JSON texts. */
static char *make(const char *header, const char *payload)
{
	size_t hn = strlen(header), pn = strlen(payload);
	char *out = malloc(b64_encoded_len(hn, B64_URL) +
			   b64_encoded_len(pn, B64_URL) + 16);

	b64_encode(header, hn, out, B64_URL);
	strcat(out, ".");
	b64_encode(payload, pn, out + strlen(out), B64_URL);
	strcat(out, ".c2ln");
	return out;
}

static int decode(const char *tok, struct jwt_claims *c)
{
	return jwt_decode(tok, strlen(tok), c);
}

static void test_service_account_token(void **state)
{
	char *t = make("{\"alg\":\"RS256\",\"kid\":\"k1\"}",
		       "{\"aud\":[\"api://AzureADTokenExchange\"],\"exp\":1634671190,"
		       "\"iat\":1634667590,\"nbf\":1634667590,"
		       "\"iss\":\"https://oidc.prod-aks.azure.com/x/\","
		       "\"sub\":\"system:serviceaccount:ns:sa\",\"jti\":\"j\","
		       "\"kubernetes.io\":{\"namespace\":\"ns\"}}");
	struct jwt_claims c;

	(void)state;
	assert_int_equal(decode(t, &c), 0);
	assert_string_equal(c.alg, "RS256");
	assert_string_equal(c.kid, "k1");
	assert_string_equal(c.iss, "https://oidc.prod-aks.azure.com/x/");
	assert_string_equal(c.sub, "system:serviceaccount:ns:sa");
	assert_int_equal(c.naud, 1);
	assert_string_equal(c.aud[0], "api://AzureADTokenExchange");
	assert_true(c.has_exp && c.has_iat && c.has_nbf);
	assert_int_equal(c.exp, 1634671190LL);
	assert_null(c.tid);
	jwt_claims_release(&c);
	free(t);
}

static void test_access_token(void **state)
{
	char *t = make("{\"typ\":\"JWT\",\"alg\":\"RS256\"}",
		       "{\"aud\":\"https://graph.microsoft.com\",\"tid\":\"t\","
		       "\"appid\":\"a\",\"oid\":\"o\",\"roles\":[\"Sites.Selected\",\"X\"],"
		       "\"exp\":99999999999}");
	char *azp = make("{\"alg\":\"none\"}", "{\"azp\":\"from-azp\"}");
	struct jwt_claims c;

	(void)state;
	assert_int_equal(decode(t, &c), 0);
	assert_int_equal(c.naud, 1);
	assert_string_equal(c.aud[0], "https://graph.microsoft.com");
	assert_int_equal(c.nroles, 2);
	assert_string_equal(c.roles[1], "X");
	assert_string_equal(c.appid, "a");
	assert_int_equal(c.exp, 99999999999LL);
	jwt_claims_release(&c);
	assert_int_equal(decode(azp, &c), 0);
	assert_string_equal(c.appid, "from-azp");
	assert_false(c.has_exp);
	jwt_claims_release(&c);
	free(t);
	free(azp);
}

static void test_padding_tolerated(void **state)
{
	/* {"a":1} is 7 bytes: base64url "eyJhIjoxfQ" with or without "==". */
	struct jwt_claims c;

	(void)state;
	assert_int_equal(decode("eyJhIjoxfQ.eyJhIjoxfQ.x", &c), 0);
	jwt_claims_release(&c);
	assert_int_equal(decode("eyJhIjoxfQ==.eyJhIjoxfQ==.x", &c), 0);
	jwt_claims_release(&c);
}

static void test_malformed(void **state)
{
	char *arr = make("{}", "[1,2]");
	char *badtype = make("{}", "{\"exp\":\"tomorrow\"}");
	char *badaud = make("{}", "{\"aud\":[1]}");
	char *badiss = make("{}", "{\"iss\":5}");
	char *trailing = make("{}", "{} x");
	struct jwt_claims c;
	static const char *const bad[] = {
		"", "abc", "a.b", "a.b.c.d", ".eyJhIjoxfQ.x", "eyJhIjoxfQ..x",
		"eyJhIjoxfQ.!!!!.x", "e30.bm90IGpzb24.x",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(decode(bad[i], &c), -EINVAL);
	assert_int_equal(decode(arr, &c), -EINVAL);
	assert_int_equal(decode(badtype, &c), -EINVAL);
	assert_int_equal(decode(badaud, &c), -EINVAL);
	assert_int_equal(decode(badiss, &c), -EINVAL);
	assert_int_equal(decode(trailing, &c), -EINVAL);
	free(arr);
	free(badtype);
	free(badaud);
	free(badiss);
	free(trailing);
}

static void test_oversized_part(void **state)
{
	size_t n = 70 * 1024;
	char *big = malloc(n + 16);
	struct jwt_claims c;

	(void)state;
	memset(big, 'A', n);
	memcpy(big + n, ".e30.x", 7);
	assert_int_equal(decode(big, &c), -EINVAL);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_account_token),
		cmocka_unit_test(test_access_token),
		cmocka_unit_test(test_padding_tolerated),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_oversized_part),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
