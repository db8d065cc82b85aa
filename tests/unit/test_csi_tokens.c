/* SPDX-License-Identifier: MIT */
/* csi.storage.k8s.io/serviceAccount.tokens as the kubelet writes it, and
 * what a driver must refuse. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "csi/sa_tokens.h"

#define AUD SA_TOKENS_AUDIENCE

static int parse(const char *json, struct sa_token *t)
{
	struct buf msg;
	int err;

	buf_init(&msg, 1024);
	err = sa_tokens_parse(json, strlen(json), AUD, t, &msg);
	if (err)
		assert_true(msg.len > 0 || err == -ENOENT);
	buf_release(&msg);
	return err;
}

static void test_kubelet_shape(void **state)
{
	struct sa_token t;

	(void)state;
	sa_token_init(&t);
	/* What kubelet's json.Marshal of map[string]TokenRequestStatus
	 * gives, with a second audience beside ours. */
	assert_int_equal(
	    parse("{\"api://AzureADTokenExchange\":{\"token\":\"aa.bb.cc\","
		  "\"expirationTimestamp\":\"2026-11-22T14:01:22Z\"},"
		  "\"\":{\"token\":\"x.y.z\",\"expirationTimestamp\":"
		  "\"2026-11-22T14:01:22Z\"}}",
		  &t),
	    0);
	assert_string_equal(t.token, "aa.bb.cc");
	assert_int_equal(t.expires_at, 1795356082);
	/* Whitespace around the object is fine; no expiry is fine. */
	assert_int_equal(
	    parse(" {\"api://AzureADTokenExchange\":{\"token\":\"a.b.c\"}}\n",
		  &t),
	    0);
	assert_string_equal(t.token, "a.b.c");
	assert_int_equal(t.expires_at, 0);
	sa_token_release(&t);
	assert_null(t.token);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "\"x\"",
	    "{",
	    "{\"api://AzureADTokenExchange\":\"a.b.c\"}",
	    "{\"api://AzureADTokenExchange\":{}}",
	    "{\"api://AzureADTokenExchange\":{\"token\":5}}",
	    "{\"api://AzureADTokenExchange\":{\"token\":\"\"}}",
	    /* not a JWT: newlines would end up in the token file */
	    "{\"api://AzureADTokenExchange\":{\"token\":\"a.b\\nc.d\"}}",
	    "{\"api://AzureADTokenExchange\":{\"token\":\"abc\"}}",
	    "{\"api://AzureADTokenExchange\":{\"token\":\"a b.c.d\"}}",
	    "{\"api://AzureADTokenExchange\":{\"token\":\"a.b.c\","
	    "\"expirationTimestamp\":\"tomorrow\"}}",
	    "{\"api://AzureADTokenExchange\":{\"token\":\"a.b.c\","
	    "\"expirationTimestamp\":12}}",
	    "{\"api://AzureADTokenExchange\":{\"token\":\"a.b.c\"}} x",
	    "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}",
	};
	struct sa_token t;

	(void)state;
	sa_token_init(&t);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &t) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_null(t.token);
	}
	/* Another audience only: -ENOENT, so the caller can say which. */
	assert_int_equal(parse("{\"vault\":{\"token\":\"a.b.c\"}}", &t),
			 -ENOENT);
	assert_null(t.token);
}

static void test_size_cap(void **state)
{
	static char big[SA_TOKENS_JSON_MAX + 64];
	struct sa_token t;

	(void)state;
	sa_token_init(&t);
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "{}", 2);
	assert_int_equal(parse(big, &t), -EINVAL);
}

static void test_rfc3339(void **state)
{
	long long t;

	(void)state;
	assert_int_equal(rfc3339_parse("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(rfc3339_parse("2026-11-22T14:01:22Z", &t), 0);
	assert_int_equal(t, 1795356082);
	assert_int_equal(rfc3339_parse("2026-11-22T14:01:22.123456Z", &t), 0);
	assert_int_equal(t, 1795356082);
	assert_int_equal(rfc3339_parse("2026-11-22T15:01:22+01:00", &t), 0);
	assert_int_equal(t, 1795356082);
	assert_int_equal(rfc3339_parse("2026-11-22T13:31:22-00:30", &t), 0);
	assert_int_equal(t, 1795356082);
	static const char *const bad[] = {
	    "",
	    "2026-11-22",
	    "2026-11-22 14:01:22Z",
	    "2026-13-22T14:01:22Z",
	    "2026-02-30T14:01:22Z",
	    "2026-11-22T24:01:22Z",
	    "2026-11-22T14:01:22",
	    "2026-11-22T14:01:22.Z",
	    "2026-11-22T14:01:22+0100",
	    "2026-11-22T14:01:22Zjunk",
	    "1969-12-31T23:59:59Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (rfc3339_parse(bad[i], &t) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kubelet_shape),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_size_cap),
	    cmocka_unit_test(test_rfc3339),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
