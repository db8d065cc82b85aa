/* SPDX-License-Identifier: MIT */
/* JWT claim decoding: shapes seen in the wild, and hostile input. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "base/b64.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* base64url(header) "." base64url(payload) "." sig, malloc'd. */
static char *make_sig(const char *header, const char *payload, const char *sig)
{
	size_t hn = strlen(header), pn = strlen(payload);
	char *out = malloc(b64_encoded_len(hn, B64_URL) +
			   b64_encoded_len(pn, B64_URL) + strlen(sig) + 3);

	assert_non_null(out);
	b64_encode(header, hn, out, B64_URL);
	strcat(out, ".");
	b64_encode(payload, pn, out + strlen(out), B64_URL);
	strcat(out, ".");
	strcat(out, sig);
	return out;
}

static char *make(const char *header, const char *payload)
{
	return make_sig(header, payload, "c2ln");
}

static int decode(const char *tok, struct jwt_claims *c)
{
	return jwt_decode(tok, strlen(tok), c);
}

/* decode() of make(header, payload), freed here. */
static int decode_json(const char *header, const char *payload,
		       struct jwt_claims *c)
{
	char *t = make(header, payload);
	int err = decode(t, c);

	free(t);
	return err;
}

static void assert_zeroed(const struct jwt_claims *c)
{
	static const struct jwt_claims zero;

	assert_memory_equal(c, &zero, sizeof(zero));
}

static void test_service_account_token(void **state)
{
	/* PROTOCOL.md §1.6 shape. */
	char *t =
	    make("{\"alg\":\"RS256\",\"kid\":\"k1\"}",
		 "{\"aud\":[\"api://AzureADTokenExchange\"],\"exp\":1634671190,"
		 "\"iat\":1634667590,\"nbf\":1634667590,"
		 "\"iss\":\"https://oidc.prod-aks.azure.com/x/\","
		 "\"sub\":\"system:serviceaccount:ns:sa\",\"jti\":\"j\","
		 "\"kubernetes.io\":{\"namespace\":\"ns\",\"pod\":{\"name\":"
		 "\"p\"}}}");
	struct jwt_claims c;

	(void)state;
	assert_int_equal(decode(t, &c), 0);
	assert_string_equal(c.alg, "RS256");
	assert_string_equal(c.kid, "k1");
	assert_string_equal(c.iss, "https://oidc.prod-aks.azure.com/x/");
	assert_string_equal(c.sub, "system:serviceaccount:ns:sa");
	assert_string_equal(c.jti, "j");
	assert_int_equal(c.naud, 1);
	assert_string_equal(c.aud[0], "api://AzureADTokenExchange");
	assert_true(c.has_exp && c.has_iat && c.has_nbf);
	assert_int_equal(c.exp, 1634671190LL);
	assert_int_equal(c.iat, 1634667590LL);
	assert_int_equal(c.nbf, 1634667590LL);
	assert_null(c.tid);
	assert_null(c.appid);
	assert_null(c.oid);
	assert_int_equal(c.nroles, 0);
	jwt_claims_release(&c);
	assert_zeroed(&c);
	jwt_claims_release(&c); /* safe twice */
	free(t);
}

static void test_access_token(void **state)
{
	char *t = make(
	    "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"x5t\":\"a\",\"kid\":\"a\"}",
	    "{\"aud\":\"https://graph.microsoft.com\",\"tid\":\"t\","
	    "\"appid\":\"a\",\"azp\":\"ignored\",\"oid\":\"o\","
	    "\"roles\":[\"Sites.Selected\",\"X\"],\"exp\":99999999999}");
	struct jwt_claims c;

	(void)state;
	assert_int_equal(decode(t, &c), 0);
	assert_int_equal(c.naud, 1);
	assert_string_equal(c.aud[0], "https://graph.microsoft.com");
	assert_int_equal(c.nroles, 2);
	assert_string_equal(c.roles[0], "Sites.Selected");
	assert_string_equal(c.roles[1], "X");
	assert_string_equal(c.appid, "a");
	assert_string_equal(c.tid, "t");
	assert_string_equal(c.oid, "o");
	assert_int_equal(c.exp, 99999999999LL);
	assert_false(c.has_nbf);
	assert_false(c.has_iat);
	jwt_claims_release(&c);
	free(t);

	/* v2 tokens carry azp instead of appid. */
	assert_int_equal(
	    decode_json("{\"alg\":\"none\"}", "{\"azp\":\"from-azp\"}", &c), 0);
	assert_string_equal(c.appid, "from-azp");
	assert_false(c.has_exp);
	assert_int_equal(c.exp, 0);
	jwt_claims_release(&c);
}

static void test_aud_forms(void **state)
{
	struct jwt_claims c;

	(void)state;
	assert_int_equal(decode_json("{}", "{\"aud\":\"one\"}", &c), 0);
	assert_int_equal(c.naud, 1);
	assert_string_equal(c.aud[0], "one");
	jwt_claims_release(&c);

	assert_int_equal(decode_json("{}", "{\"aud\":[\"a\",\"b\",\"c\"]}", &c),
			 0);
	assert_int_equal(c.naud, 3);
	assert_string_equal(c.aud[0], "a");
	assert_string_equal(c.aud[2], "c");
	jwt_claims_release(&c);

	assert_int_equal(decode_json("{}", "{\"aud\":[]}", &c), 0);
	assert_int_equal(c.naud, 0);
	jwt_claims_release(&c);

	/* Absent: nothing. Empty object header and payload are fine. */
	assert_int_equal(decode_json("{}", "{}", &c), 0);
	assert_int_equal(c.naud, 0);
	assert_null(c.aud);
	assert_null(c.alg);
	assert_null(c.iss);
	jwt_claims_release(&c);
}

static void test_padding_variants(void **state)
{
	/* Payloads of 7, 8 and 9 bytes: base64url needs 2, 1 and 0 pad chars.
	 */
	static const char *const ok[] = {
	    "eyJhIjoxfQ.eyJhIjoxfQ.c2ln",     /* {"a":1}, unpadded */
	    "eyJhIjoxfQ==.eyJhIjoxfQ==.c2ln", /* padded */
	    "eyJhIjoxfQ.eyJhIjoxMH0.c2ln",    /* {"a":10} */
	    "eyJhIjoxfQ.eyJhIjoxMH0=.c2ln",
	    "eyJhIjoxfQ.eyJhIjoxMDB9.c2ln", /* {"a":100} */
	    "eyJhIjoxfQ.eyJhIjoxfQ.",	    /* unsecured: empty sig */
	    "eyJhIjoxfQ.eyJhIjoxfQ.c2lnbg", /* sig with 2 pad missing */
	    "eyJhIjoxfQ.eyJhIjoxfQ.c2lnbg==",
	    "eyJhIjoxfQ.eyJhIjoxfQ.-_8", /* url alphabet */
	};
	static const char *const bad[] = {
	    "eyJhIjoxfQ=.eyJhIjoxfQ.c2ln",   /* half the padding */
	    "eyJhIjoxfQ===.eyJhIjoxfQ.c2ln", /* too much */
	    "eyJhIjoxfQ.eyJhIjoxMH0==.c2ln", /* padding beyond 4 */
	    "eyJhIjoxfR.eyJhIjoxfQ.c2ln",    /* non-zero trailing bits */
	    "eyJhIjoxfQ.eyJhIjoxfQ.c2lnb",   /* impossible length */
	    "eyJhIjoxfQ.eyJhIjoxfQ.c2l=",    /* sig trailing bits */
	    "eyJhIjoxfQ.eyJhIjoxfQ.+/8",     /* std alphabet */
	    "eyJhIjox fQ.eyJhIjoxfQ.c2ln",   /* whitespace */
	    "eyJhIjoxfQ.eyJhIjoxfQ.c2ln\n",  /* trailing newline */
	};
	struct jwt_claims c;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		if (decode(ok[i], &c) != 0)
			fail_msg("refused: %s", ok[i]);
		jwt_claims_release(&c);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (decode(bad[i], &c) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_zeroed(&c);
	}
	/* len bounds the token: a newline past it is not seen. */
	assert_int_equal(jwt_decode("eyJhIjoxfQ.eyJhIjoxfQ.c2ln\n", 26, &c), 0);
	jwt_claims_release(&c);
}

static void test_part_count(void **state)
{
	static const char *const bad[] = {
	    "",
	    ".",
	    "..",
	    "...",
	    "abc",
	    "eyJhIjoxfQ",
	    "eyJhIjoxfQ.eyJhIjoxfQ",
	    "eyJhIjoxfQ.eyJhIjoxfQ.c2ln.c2ln",
	    "eyJhIjoxfQ.eyJhIjoxfQ.c2ln.",
	    ".eyJhIjoxfQ.c2ln",
	    "eyJhIjoxfQ..c2ln",
	    /* JWE (five parts). */
	    "eyJhIjoxfQ.a.b.c.d",
	};
	struct jwt_claims c;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (decode(bad[i], &c) != -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
		assert_zeroed(&c);
	}
	assert_int_equal(jwt_decode(NULL, 0, &c), -EINVAL);
}

static void test_not_an_object(void **state)
{
	static const char *const payloads[] = {
	    "[1,2]",
	    "\"str\"",
	    "42",
	    "null",
	    "true",
	    "",
	    "{",
	    "{\"a\":}",
	    "{} x",
	    "{}{}",
	    "not json",
	    "{\"a\":1,}",
	    "{\"a\":1 /* c */}",
	    "{\"a\":\"\xff\"}",
	};
	struct jwt_claims c;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(payloads); i++) {
		if (decode_json("{}", payloads[i], &c) != -EINVAL)
			fail_msg("accepted payload: %s", payloads[i]);
		if (decode_json(payloads[i], "{}", &c) != -EINVAL)
			fail_msg("accepted header: %s", payloads[i]);
	}
	/* Embedded NUL after a valid object. */
	char raw[] = "{}\0{}";
	char enc[32], tok[80];
	b64_encode(raw, 5, enc, B64_URL);
	snprintf(tok, sizeof(tok), "e30.%s.c2ln", enc);
	assert_int_equal(decode(tok, &c), -EINVAL);
}

static void test_times(void **state)
{
	static const struct {
		const char *json;
		long long want;
	} ok[] = {
	    {"{\"exp\":0}", 0},
	    {"{\"exp\":1700000000}", 1700000000LL},
	    {"{\"exp\":1700000000.75}",
	     1700000000LL}, /* NumericDate fraction */
	    {"{\"exp\":1.7e9}", 1700000000LL},
	    {"{\"exp\":253402300799}", 253402300799LL}, /* 9999-12-31 */
	};
	static const char *const bad[] = {
	    "{\"exp\":253402300800}",
	    "{\"exp\":-1}",
	    "{\"exp\":-0.5}",
	    "{\"exp\":9223372036854775807}",
	    "{\"exp\":9223372036854775808}",
	    "{\"exp\":18446744073709551616}",
	    "{\"exp\":100000000000000000000000000000}",
	    "{\"exp\":-9223372036854775809}",
	    "{\"exp\":1e400}",
	    "{\"exp\":-1e400}",
	    "{\"exp\":1e300}",
	    "{\"nbf\":NaN}",
	    "{\"iat\":Infinity}",
	    "{\"exp\":\"1700000000\"}",
	    "{\"exp\":true}",
	    "{\"exp\":null}",
	    "{\"exp\":[1]}",
	    "{\"nbf\":{}}",
	};
	struct jwt_claims c;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		assert_int_equal(decode_json("{}", ok[i].json, &c), 0);
		assert_true(c.has_exp);
		assert_int_equal(c.exp, ok[i].want);
		jwt_claims_release(&c);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (decode_json("{}", bad[i], &c) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
}

static void test_wrong_types(void **state)
{
	static const char *const payloads[] = {
	    "{\"iss\":5}",
	    "{\"sub\":null}",
	    "{\"tid\":[\"t\"]}",
	    "{\"appid\":{}}",
	    "{\"azp\":1}",
	    "{\"oid\":true}",
	    "{\"jti\":1.5}",
	    "{\"aud\":1}",
	    "{\"aud\":[1]}",
	    "{\"aud\":[\"a\",null]}",
	    "{\"aud\":{\"a\":1}}",
	    "{\"roles\":\"x\",\"aud\":[[\"x\"]]}",
	    "{\"roles\":[true]}",
	    "{\"roles\":{}}",
	    /* NUL inside a claim would print as something else. */
	    "{\"iss\":\"https://good/\\u0000evil\"}",
	    "{\"aud\":[\"a\\u0000b\"]}",
	};
	static const char *const headers[] = {
	    "{\"alg\":256}",
	    "{\"kid\":[]}",
	};
	struct jwt_claims c;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(payloads); i++) {
		if (decode_json("{}", payloads[i], &c) != -EINVAL)
			fail_msg("accepted: %s", payloads[i]);
		assert_zeroed(&c);
	}
	for (size_t i = 0; i < ARRAY_SIZE(headers); i++)
		if (decode_json(headers[i], "{}", &c) != -EINVAL)
			fail_msg("accepted header: %s", headers[i]);
	/* Unknown claims of any type are ignored; so are claims in the
	 * header that belong to the payload. */
	assert_int_equal(decode_json("{\"iss\":\"hdr\",\"crit\":[1]}",
				     "{\"x\":[{}],\"scp\":5,\"iss\":\"i\"}",
				     &c),
			 0);
	assert_string_equal(c.iss, "i");
	jwt_claims_release(&c);
	/* Unicode escapes decode to UTF-8. */
	assert_int_equal(decode_json("{}", "{\"sub\":\"caf\\u00e9\"}", &c), 0);
	assert_string_equal(c.sub, "café");
	jwt_claims_release(&c);
}

static void test_oversized_parts(void **state)
{
	size_t n = 70 * 1024;
	char *big = malloc(n + 64), *tok;
	struct jwt_claims c;

	(void)state;
	/* Header over the bound. */
	memset(big, 'A', n);
	memcpy(big + n, ".e30.c2ln", 10);
	assert_int_equal(decode(big, &c), -EINVAL);
	/* Payload over the bound. */
	memcpy(big, "e30.", 4);
	memcpy(big + n, ".c2ln", 6);
	assert_int_equal(decode(big, &c), -EINVAL);
	/* Signature over the bound. */
	memcpy(big, "e30.e30.", 8);
	big[n] = '\0';
	assert_int_equal(decode(big, &c), -EINVAL);
	free(big);

	/* A payload of exactly 64 KiB encoded (48 KiB of JSON) is fine. */
	size_t pn = 48 * 1024;
	char *payload = malloc(pn + 16);
	memcpy(payload, "{\"x\":\"", 6);
	memset(payload + 6, 'y', pn - 8);
	memcpy(payload + pn - 2, "\"}", 3);
	tok = make("{}", payload);
	assert_int_equal(strchr(strchr(tok, '.') + 1, '.') - strchr(tok, '.') -
			     1,
			 64 * 1024);
	assert_int_equal(decode(tok, &c), 0);
	jwt_claims_release(&c);
	free(tok);
	free(payload);
}

static void test_deep_nesting(void **state)
{
	/* Deeper than json-c's default depth: refused, not a stack blowup. */
	size_t depth = 5000;
	char *payload = malloc(2 * depth + 16), *tok;
	struct jwt_claims c;

	(void)state;
	size_t o = 0;
	memcpy(payload, "{\"x\":", 5);
	o = 5;
	for (size_t i = 0; i < depth; i++)
		payload[o++] = '[';
	for (size_t i = 0; i < depth; i++)
		payload[o++] = ']';
	memcpy(payload + o, "}", 2);
	tok = make("{}", payload);
	assert_int_equal(decode(tok, &c), -EINVAL);
	free(tok);
	free(payload);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_service_account_token),
	    cmocka_unit_test(test_access_token),
	    cmocka_unit_test(test_aud_forms),
	    cmocka_unit_test(test_padding_variants),
	    cmocka_unit_test(test_part_count),
	    cmocka_unit_test(test_not_an_object),
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_wrong_types),
	    cmocka_unit_test(test_oversized_parts),
	    cmocka_unit_test(test_deep_nesting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
