/* SPDX-License-Identifier: MIT */
/* Entra/IMDS error bodies and the one line a person acts on. */
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

#include "auth/entra_error.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* PROTOCOL.md §1.5 sample, with the fields filled in. */
static const char sample[] =
    "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS700024: "
    "Client assertion "
    "is not within its valid time range. Current time: "
    "2023-05-30T05:19:20Z\\r\\nTrace ID: "
    "abc\\r\\nCorrelation ID: def\\r\\nTimestamp: 2023-05-30 05:19:20Z\","
    "\"error_codes\":[700024],\"timestamp\":\"2023-05-30 05:19:20Z\","
    "\"trace_id\":\"0f1e\",\"correlation_id\":\"c0r\","
    "\"error_uri\":\"https://login.microsoftonline.com/error?code=700024\"}";

static const struct entra_error_context wi = {
    .credential = "workload identity",
    .client_id = "11111111-2222-3333-4444-555555555555",
    .tenant_id = "contoso.onmicrosoft.com",
    .sa_issuer = "https://oidc.example/abc/",
    .sa_subject = "system:serviceaccount:data:reader",
    .sa_exp = 1700000000,
    .now = 1700000600,
    .scope = "https://apim.contoso.net/.default",
};

static struct buf msg;

static int setup(void **state)
{
	(void)state;
	buf_init(&msg, 8192);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	buf_release(&msg);
	return 0;
}

/* The message for body under ctx; also checks the one-line promise. */
static const char *message_ctx(const char *body,
			       const struct entra_error_context *ctx)
{
	struct entra_error e;

	buf_reset(&msg);
	assert_int_equal(entra_error_parse(body, strlen(body), &e), 0);
	assert_int_equal(entra_error_message(&e, ctx, &msg), 0);
	entra_error_release(&e);
	for (size_t i = 0; i < msg.len; i++)
		if ((unsigned char)msg.data[i] < 0x20 || msg.data[i] == 0x7f)
			fail_msg("control byte 0x%02x in: %s",
				 (unsigned char)msg.data[i], msg.data);
	assert_null(strchr(buf_str(&msg), '{')); /* no JSON dump */
	return buf_str(&msg);
}

static const char *message(const char *body)
{
	return message_ctx(body, &wi);
}

static void expect_all(const char *text, const char *const *facts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strstr(text, facts[i]))
			fail_msg("missing \"%s\" in: %s", facts[i], text);
}

#define EXPECT(text, ...)                                                      \
	do {                                                                   \
		const char *const facts_[] = {__VA_ARGS__};                    \
		expect_all((text), facts_, ARRAY_SIZE(facts_));                \
	} while (0)

static int ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n >= m && strcmp(s + n - m, tail) == 0;
}

static void test_parse_sample(void **state)
{
	struct entra_error e;

	(void)state;
	assert_int_equal(entra_error_parse(sample, strlen(sample), &e), 0);
	assert_string_equal(e.error, "invalid_client");
	assert_int_equal(e.aadsts, 700024);
	assert_string_equal(e.trace_id, "0f1e");
	assert_string_equal(e.correlation_id, "c0r");
	/* Only the first line of the description. */
	assert_string_equal(e.description,
			    "AADSTS700024: Client assertion is not within its "
			    "valid time range. "
			    "Current time: 2023-05-30T05:19:20Z");
	entra_error_release(&e);
	entra_error_release(&e); /* safe twice */
}

static void test_codes(void **state)
{
	static const struct {
		const char *body;
		long want;
	} cases[] = {
	    /* From the description when error_codes is absent. */
	    {"{\"error\":\"invalid_request\",\"error_description\":"
	     "\"AADSTS90061: x\"}",
	     90061},
	    /* error_codes wins over the description. */
	    {"{\"error\":\"e\",\"error_codes\":[70021,1],\"error_description\":"
	     "\"AADSTS1: x\"}",
	     70021},
	    {"{\"error\":\"e\",\"error_codes\":[\"7000215\"]}", 7000215},
	    /* Empty or odd error_codes fall back to the description. */
	    {"{\"error\":\"e\",\"error_codes\":[],\"error_description\":"
	     "\"AADSTS50034: x\"}",
	     50034},
	    {"{\"error\":\"e\",\"error_codes\":\"70021\",\"error_description\":"
	     "\"AADSTS2: x\"}",
	     2},
	    {"{\"error\":\"e\",\"error_codes\":[-5]}", 0},
	    {"{\"error\":\"e\",\"error_codes\":[1e30]}", 0},
	    {"{\"error\":\"e\",\"error_codes\":[99999999999999999999]}", 0},
	    /* Only "AADSTS<digits>:" at the very start counts. */
	    {"{\"error\":\"e\",\"error_description\":\"see AADSTS700016: x\"}",
	     0},
	    {"{\"error\":\"e\",\"error_description\":\"AADSTS: x\"}", 0},
	    {"{\"error\":\"e\",\"error_description\":\"AADSTS12x: x\"}", 0},
	    {"{\"error\":\"e\",\"error_description\":\"AADSTS700016\"}", 0},
	    {"{\"error\":\"e\",\"error_description\":"
	     "\"AADSTS99999999999999999999: x\"}",
	     0},
	    {"{\"error\":\"e\"}", 0},
	};
	struct entra_error e;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(
		    entra_error_parse(cases[i].body, strlen(cases[i].body), &e),
		    0);
		if (e.aadsts != cases[i].want)
			fail_msg("%s: got %ld", cases[i].body, e.aadsts);
		entra_error_release(&e);
	}
}

static void test_description_bounds(void **state)
{
	struct entra_error e;
	char body[2048];
	char big[1200];

	(void)state;
	/* Inline "Trace ID:" (CRLFs flattened by a proxy) is cut too. */
	const char *flat = "{\"error\":\"e\",\"error_description\":\"AADSTS1: "
			   "bad.  Trace ID: x Correlation ID: y\"}";
	assert_int_equal(entra_error_parse(flat, strlen(flat), &e), 0);
	assert_string_equal(e.description, "AADSTS1: bad.");
	entra_error_release(&e);

	/* 1000 bytes of 'é' (2 bytes each): bounded to 512 bytes, whole
	 * characters only. */
	for (size_t i = 0; i + 1 < 1000; i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[1000] = '\0';
	snprintf(body, sizeof(body),
		 "{\"error\":\"e\",\"error_description\":\"x%s\"}", big);
	assert_int_equal(entra_error_parse(body, strlen(body), &e), 0);
	assert_true(strlen(e.description) <= 512);
	assert_true(strlen(e.description) >= 510);
	/* "x" + n complete pairs: odd length. */
	assert_int_equal(strlen(e.description) % 2, 1);
	entra_error_release(&e);

	/* Control bytes (ESC, tab, BEL) become spaces; no description -> "". */
	const char *ctl = "{\"error\":\"bad\\u001b[31m\\nerr\",\"error_"
			  "description\":\"a\\tb\\u0007c\","
			  "\"trace_id\":\"t\\r\\nforged: line\"}";
	assert_int_equal(entra_error_parse(ctl, strlen(ctl), &e), 0);
	assert_string_equal(e.error, "bad [31m err");
	assert_string_equal(e.description, "a b c");
	assert_string_equal(e.trace_id, "t  forged: line");
	entra_error_release(&e);
	const char *nodesc = "{\"error\":\"e\",\"error_description\":5}";
	assert_int_equal(entra_error_parse(nodesc, strlen(nodesc), &e), 0);
	assert_string_equal(e.description, "");
	assert_null(e.trace_id);
	assert_null(e.correlation_id);
	entra_error_release(&e);
}

static void test_message_70021(void **state)
{
	const char *m;

	(void)state;
	m = message("{\"error\":\"invalid_client\",\"error_codes\":[70021],"
		    "\"trace_id\":\"t1\"}");
	EXPECT(m, "no federated credential",
	       "11111111-2222-3333-4444-555555555555",
	       "'https://oidc.example/abc/'",
	       "'system:serviceaccount:data:reader'", "trailing slash",
	       "api://AzureADTokenExchange");
	assert_true(ends_with(m, "(AADSTS70021, trace t1)"));
	/* The same code as invalid_request/400 (older logs) reads the same. */
	m = message(
	    "{\"error\":\"invalid_request\",\"error_description\":"
	    "\"AADSTS70021: No matching federated identity record found\"}");
	EXPECT(m, "'https://oidc.example/abc/'", "(AADSTS70021)");
}

static void test_message_700016(void **state)
{
	const char *m;

	(void)state;
	m = message("{\"error\":\"unauthorized_client\",\"error_codes\":["
		    "700016],\"trace_id\":\"t2\"}");
	EXPECT(m, "11111111-2222-3333-4444-555555555555",
	       "not found in tenant contoso.onmicrosoft.com", "AZURE_CLIENT_ID",
	       "azure.workload.identity/client-id");
	assert_true(ends_with(m, "(AADSTS700016, trace t2)"));
}

static void test_message_700024(void **state)
{
	const char *m;
	struct entra_error_context cert = wi;

	(void)state;
	m = message(sample);
	EXPECT(
	    m, "expired or not yet valid", "2023-11-14 22:13:20Z" /* sa_exp */,
	    "local time is 2023-11-14 22:23:20Z" /* now */, "clock", "kubelet");
	assert_true(ends_with(m, "(AADSTS700024, trace 0f1e)"));
	/* Our own assertion (certificate): no token exp, still the clock. */
	cert.credential = "client certificate";
	cert.sa_exp = 0;
	m = message_ctx(sample, &cert);
	EXPECT(m, "expired or not yet valid", "local time 2023-11-14 22:23:20Z",
	       "clock");
	assert_null(strstr(m, "kubelet"));
}

static void test_message_90061(void **state)
{
	const char *m;
	struct entra_error_context noslash = wi;

	(void)state;
	m = message("{\"error\":\"invalid_request\",\"error_codes\":[90061],"
		    "\"trace_id\":\"t\"}");
	EXPECT(m, "could not fetch",
	       "https://oidc.example/abc/.well-known/openid-configuration",
	       "publicly reachable over HTTPS");
	assert_true(ends_with(m, "(AADSTS90061, trace t)"));
	/* An issuer without the trailing slash still yields one slash. */
	noslash.sa_issuer = "https://oidc.example/abc";
	m = message_ctx(
	    "{\"error\":\"invalid_request\",\"error_codes\":[90061]}",
	    &noslash);
	EXPECT(m, "https://oidc.example/abc/.well-known/openid-configuration");
}

static void test_message_700027(void **state)
{
	const char *m;
	struct entra_error_context cert = wi;

	(void)state;
	cert.credential = "client certificate";
	m = message_ctx(
	    "{\"error\":\"invalid_client\",\"error_codes\":[700027]}", &cert);
	EXPECT(m, "signature validation failed",
	       "certificate is not registered",
	       "11111111-2222-3333-4444-555555555555", "(AADSTS700027)");
	m = message("{\"error\":\"invalid_client\",\"error_codes\":[700027]}");
	EXPECT(m, "signature validation failed", "JWKS");
}

static void test_message_other_codes(void **state)
{
	const char *m;

	(void)state;
	m = message("{\"error\":\"invalid_client\",\"error_codes\":[7000215]}");
	EXPECT(m, "invalid client secret",
	       "11111111-2222-3333-4444-555555555555", "(AADSTS7000215)");
	m = message("{\"error\":\"invalid_scope\",\"error_codes\":[70011],"
		    "\"error_description\":"
		    "\"AADSTS70011: The provided value for the input parameter "
		    "'scope' is not valid. "
		    "The scope https://graph.example/.default is not "
		    "valid.\\r\\nTrace ID: q\"}");
	EXPECT(m, "invalid scope", "-o graph_url",
	       "https://graph.example/.default", "(AADSTS70011)");
	m = message("{\"error\":\"invalid_resource\",\"error_codes\":"
		    "[500011]}");
	EXPECT(m, "https://apim.contoso.net/.default",
	       "contoso.onmicrosoft.com", "gateway",
	       "-o scope=https://graph.microsoft.com/.default",
	       "(AADSTS500011)");
	m = message("{\"error\":\"invalid_request\",\"error_codes\":[90002]}");
	EXPECT(m, "tenant contoso.onmicrosoft.com was not found",
	       "AZURE_TENANT_ID", "(AADSTS90002)");
	m = message("{\"error\":\"invalid_client\",\"error_codes\":[700211]}");
	EXPECT(m, "issuer", "'https://oidc.example/abc/'", "(AADSTS700211)");
	m = message("{\"error\":\"invalid_client\",\"error_codes\":[700213]}");
	EXPECT(m, "subject", "'system:serviceaccount:data:reader'",
	       "case-sensitive", "(AADSTS700213)");

	/* Unknown codes keep error and the description's first line. */
	m = message(
	    "{\"error\":\"temporarily_unavailable\",\"error_description\":"
	    "\"AADSTS1: busy\\r\\nTrace ID: x\",\"trace_id\":\"tt\"}");
	assert_string_equal(
	    m, "temporarily_unavailable: AADSTS1: busy (AADSTS1, trace tt)");
	m = message("{\"error\":\"invalid_grant\"}");
	assert_string_equal(m, "invalid_grant: (no description)");
	/* Trace id without a code. */
	m = message("{\"error\":\"x\",\"error_description\":\"y\",\"trace_id\":"
		    "\"t9\"}");
	assert_string_equal(m, "x: y (trace t9)");
}

static void test_imds_shape(void **state)
{
	const char *m;
	struct entra_error_context mi = {.credential = "managed identity"};
	struct entra_error e;
	const char *body = "{\"error\":\"invalid_request\",\"error_"
			   "description\":\"Identity not found\"}";

	(void)state;
	assert_int_equal(entra_error_parse(body, strlen(body), &e), 0);
	assert_int_equal(e.aadsts, 0);
	assert_null(e.trace_id);
	entra_error_release(&e);
	m = message_ctx(body, &mi);
	assert_string_equal(m, "invalid_request: Identity not found");
	/* IMDS answers that carry a code read like Entra's. */
	m = message_ctx("{\"error\":\"invalid_request\",\"error_description\":"
			"\"AADSTS700016: "
			"Application with identifier 'x' was not found\"}",
			&mi);
	EXPECT(m, "(unknown)", "AZURE_CLIENT_ID", "(AADSTS700016)");
	/* ctx may be NULL. */
	m = message_ctx(sample, NULL);
	EXPECT(m, "expired or not yet valid", "(AADSTS700024, trace 0f1e)");
	m = message_ctx("{\"error\":\"x\",\"error_codes\":[70021]}", NULL);
	EXPECT(m, "(unknown)", "(AADSTS70021)");
}

static void test_appends(void **state)
{
	struct entra_error e;
	const char *body = "{\"error\":\"x\",\"error_description\":\"y\"}";

	(void)state;
	buf_reset(&msg);
	buf_append_str(&msg, "token request failed: ");
	assert_int_equal(entra_error_parse(body, strlen(body), &e), 0);
	assert_int_equal(entra_error_message(&e, &wi, &msg), 0);
	assert_string_equal(buf_str(&msg), "token request failed: x: y");
	/* A full buffer is an error, not an overflow. */
	struct buf tiny;
	buf_init(&tiny, 3);
	assert_int_equal(entra_error_message(&e, &wi, &tiny), -EFBIG);
	assert_true(tiny.len <= 3);
	buf_release(&tiny);
	entra_error_release(&e);
}

/* Only ids, issuer, subject and times are ever quoted: nothing else from the
 * body, and no secret from anywhere. */
static void test_no_secrets_echoed(void **state)
{
	static const long codes[] = {70021,  700211, 700213, 700016,
				     700024, 90061,  700027, 7000215,
				     70011,  500011, 90002,  12345};
	/* Secrets, and one harmless field, that no message needs. */
	static const char *const secrets[] = {
	    "hunter2",
	    "eyJhbGciOi",
	    "PRIVATE",
	    "c0rrelation-should-not-be-needed",
	};
	char body[1024];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(codes); i++) {
		snprintf(
		    body, sizeof(body),
		    "{\"error\":\"invalid_client\",\"error_codes\":[%ld],"
		    "\"client_secret\":\"hunter2\",\"access_token\":"
		    "\"eyJhbGciOiJSUzI1NiJ9.e30.x\","
		    "\"client_assertion\":\"eyJhbGciOiJQUzI1NiJ9.e30.y\","
		    "\"key\":\"PRIVATE\","
		    "\"correlation_id\":\"c0rrelation-should-not-be-needed\"}",
		    codes[i]);
		const char *m = message(body);
		for (size_t j = 0; j < ARRAY_SIZE(secrets); j++)
			if (strstr(m, secrets[j]))
				fail_msg("code %ld echoed \"%s\": %s", codes[i],
					 secrets[j], m);
	}
}

static void test_malformed(void **state)
{
	struct entra_error e;
	static const char *const bad[] = {
	    "",
	    " ",
	    "<html>502 Bad Gateway</html>",
	    "[]",
	    "\"error\"",
	    "null",
	    "{\"error\":5}",
	    "{\"error\":null}",
	    "{\"error\":\"\"}",
	    "{\"error\":[\"x\"]}",
	    "{\"error_description\":\"x\"}",
	    "{\"error\":\"x\"",
	    "{\"error\":\"x\",",
	    "{}",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&e, 0x5a, sizeof(e));
		if (entra_error_parse(bad[i], strlen(bad[i]), &e) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_null(e.error);
		assert_null(e.description);
	}
	assert_int_equal(entra_error_parse(NULL, 5, &e), -EINVAL);
	/* len bounds the body: a valid object cut short is malformed. */
	const char *ok = "{\"error\":\"x\"}";
	assert_int_equal(entra_error_parse(ok, strlen(ok) - 1, &e), -EINVAL);
	assert_int_equal(entra_error_parse(ok, strlen(ok), &e), 0);
	entra_error_release(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_sample),
	    cmocka_unit_test(test_codes),
	    cmocka_unit_test(test_description_bounds),
	    cmocka_unit_test(test_message_70021),
	    cmocka_unit_test(test_message_700016),
	    cmocka_unit_test(test_message_700024),
	    cmocka_unit_test(test_message_90061),
	    cmocka_unit_test(test_message_700027),
	    cmocka_unit_test(test_message_other_codes),
	    cmocka_unit_test(test_imds_shape),
	    cmocka_unit_test(test_appends),
	    cmocka_unit_test(test_no_secrets_echoed),
	    cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
