/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "auth/entra_error.h"

/* PROTOCOL.md §1.5 sample. */
static const char sample[] =
	"{\"error\":\"invalid_client\",\"error_description\":\"AADSTS700024: Client assertion "
	"is not within its valid time range. Current time: 2023-05-30T05:19:20Z\\r\\nTrace ID: "
	"abc\\r\\nCorrelation ID: def\\r\\nTimestamp: 2023-05-30 05:19:20Z\","
	"\"error_codes\":[700024],\"timestamp\":\"2023-05-30 05:19:20Z\","
	"\"trace_id\":\"0f1e\",\"correlation_id\":\"c0r\","
	"\"error_uri\":\"https://login.microsoftonline.com/error?code=700024\"}";

static const struct entra_error_context ctx = {
	.credential = "workload identity",
	.client_id = "11111111-2222-3333-4444-555555555555",
	.tenant_id = "contoso.onmicrosoft.com",
	.sa_issuer = "https://oidc.example/abc/",
	.sa_subject = "system:serviceaccount:data:reader",
	.sa_exp = 1700000000,
	.now = 1700000600,
};

static char *message_for(const char *body, struct buf *b)
{
	struct entra_error e;

	buf_reset(b);
	assert_int_equal(entra_error_parse(body, strlen(body), &e), 0);
	assert_int_equal(entra_error_message(&e, &ctx, b), 0);
	entra_error_release(&e);
	return b->data;
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
	assert_null(strstr(e.description, "Trace ID"));
	assert_non_null(strstr(e.description, "AADSTS700024"));
	entra_error_release(&e);
}

static void test_code_from_description(void **state)
{
	const char *body = "{\"error\":\"invalid_request\",\"error_description\":\"AADSTS90061: x\"}";
	struct entra_error e;

	(void)state;
	assert_int_equal(entra_error_parse(body, strlen(body), &e), 0);
	assert_int_equal(e.aadsts, 90061);
	entra_error_release(&e);
}

static void test_messages_are_actionable(void **state)
{
	struct buf b;
	char *m;

	(void)state;
	buf_init(&b, 4096);
	m = message_for("{\"error\":\"invalid_client\",\"error_codes\":[70021],\"trace_id\":\"t1\"}", &b);
	assert_non_null(strstr(m, "https://oidc.example/abc/"));
	assert_non_null(strstr(m, "system:serviceaccount:data:reader"));
	assert_non_null(strstr(m, "trailing slash"));
	assert_non_null(strstr(m, "AADSTS70021, trace t1"));

	m = message_for("{\"error\":\"unauthorized_client\",\"error_codes\":[700016]}", &b);
	assert_non_null(strstr(m, "11111111-2222-3333-4444-555555555555"));
	assert_non_null(strstr(m, "contoso.onmicrosoft.com"));
	assert_non_null(strstr(m, "AZURE_CLIENT_ID"));

	m = message_for(sample, &b);
	assert_non_null(strstr(m, "2023-11-14 22:13:20Z")); /* sa_exp */
	assert_non_null(strstr(m, "2023-11-14 22:23:20Z")); /* now */
	assert_non_null(strstr(m, "clock"));

	m = message_for("{\"error\":\"invalid_request\",\"error_codes\":[90061]}", &b);
	assert_non_null(strstr(m, "https://oidc.example/abc/.well-known/openid-configuration"));

	m = message_for("{\"error\":\"invalid_client\",\"error_codes\":[7000215]}", &b);
	assert_non_null(strstr(m, "client secret"));
	m = message_for("{\"error\":\"invalid_scope\",\"error_codes\":[70011]}", &b);
	assert_non_null(strstr(m, "graph_url"));
	m = message_for("{\"error\":\"invalid_request\",\"error_codes\":[90002]}", &b);
	assert_non_null(strstr(m, "AZURE_TENANT_ID"));
	m = message_for("{\"error\":\"invalid_client\",\"error_codes\":[700027]}", &b);
	assert_non_null(strstr(m, "signature"));

	/* Unknown codes keep error and description, one line. */
	m = message_for("{\"error\":\"temporarily_unavailable\",\"error_description\":\"AADSTS1: busy\\r\\nTrace ID: x\"}", &b);
	assert_string_equal(m, "temporarily_unavailable: AADSTS1: busy (AADSTS1)");
	/* IMDS shape: no codes. */
	m = message_for("{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}", &b);
	assert_string_equal(m, "invalid_request: Identity not found");
	buf_release(&b);
}

static void test_malformed(void **state)
{
	struct entra_error e;
	static const char *const bad[] = {
		"", "<html>502</html>", "[]", "{\"error\":5}", "{\"error_description\":\"x\"}",
		"{\"error\":\"x\"",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(entra_error_parse(bad[i], strlen(bad[i]), &e), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_sample),
		cmocka_unit_test(test_code_from_description),
		cmocka_unit_test(test_messages_are_actionable),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
