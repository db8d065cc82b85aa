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

#include "base/url.h"

static void test_form_encoding(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(url_form_add(&b, "grant_type", "client_credentials"), 0);
	assert_int_equal(url_form_add(&b, "scope", "https://graph.microsoft.com/.default"), 0);
	assert_int_equal(url_form_add(&b, "x y", "a+b&c=d%e é~._-"), 0);
	assert_string_equal(buf_str(&b),
			    "grant_type=client_credentials"
			    "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
			    "&x%20y=a%2Bb%26c%3Dd%25e%20%C3%A9~._-");
	buf_release(&b);
}

static void test_path_segment(void **state)
{
	struct buf b;
	const char *name = "Q3 #1 50% a/b [x] (y) 日本.csv";

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(url_path_segment_encode(&b, name, strlen(name)), 0);
	assert_string_equal(buf_str(&b),
			    "Q3%20%231%2050%25%20a%2Fb%20%5Bx%5D%20%28y%29%20%E6%97%A5%E6%9C%AC.csv");
	buf_release(&b);
}

static void expect_join(const char *base, const char *const *parts, size_t n,
			const char *want)
{
	char *got = url_join(base, parts, n);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_join_one_slash(void **state)
{
	const char *aks[] = {"72f988bf-86f1-41af-91ab-2d7cd011db47", "oauth2/v2.0/token"};
	const char *slashy[] = {"/tenant/", "//oauth2/v2.0/token"};
	const char *empty[] = {"", "x"};

	(void)state;
	expect_join("https://login.microsoftonline.com/", aks, 2,
		    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token");
	expect_join("https://login.microsoftonline.com", aks, 2,
		    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token");
	expect_join("https://h:8443//", slashy, 2, "https://h:8443/tenant/oauth2/v2.0/token");
	expect_join("https://h", empty, 2, "https://h/x");
	expect_join("https://h/", NULL, 0, "https://h");
}

static void test_percent_decode(void **state)
{
	char *out;

	(void)state;
	assert_int_equal(url_percent_decode("Shared%20Documents", 18, &out), 0);
	assert_string_equal(out, "Shared Documents");
	free(out);
	assert_int_equal(url_percent_decode("%e6%97%a5", 9, &out), 0);
	assert_string_equal(out, "日");
	free(out);
	assert_int_equal(url_percent_decode("a%2", 3, &out), -EINVAL);
	assert_null(out);
	assert_int_equal(url_percent_decode("a%", 2, &out), -EINVAL);
	assert_int_equal(url_percent_decode("%zz", 3, &out), -EINVAL);
	assert_int_equal(url_percent_decode("a%00b", 5, &out), -EINVAL);
	/* len bounds the input: the escape past it is not seen. */
	assert_int_equal(url_percent_decode("ab%20", 2, &out), 0);
	assert_string_equal(out, "ab");
	free(out);
}

static void test_parse(void **state)
{
	struct url_parts p;

	(void)state;
	assert_int_equal(url_parse("https://Contoso.SharePoint.com/sites/Finance/Shared%20Documents?a=1#f", &p), 0);
	assert_string_equal(p.scheme, "https");
	assert_string_equal(p.host, "contoso.sharepoint.com");
	assert_int_equal(p.port, 0);
	assert_string_equal(p.path, "/sites/Finance/Shared%20Documents");
	assert_string_equal(p.query, "a=1");
	url_parts_release(&p);

	assert_int_equal(url_parse("http://127.0.0.1:8443", &p), 0);
	assert_string_equal(p.host, "127.0.0.1");
	assert_int_equal(p.port, 8443);
	assert_string_equal(p.path, "/");
	assert_null(p.query);
	url_parts_release(&p);

	assert_int_equal(url_parse("https://[::1]:9/x", &p), 0);
	assert_string_equal(p.host, "::1");
	assert_int_equal(p.port, 9);
	url_parts_release(&p);

	static const char *const bad[] = {
		"ftp://h/", "https://", "https://:80/", "https://h:/", "https://h:0/",
		"https://h:99999/", "https://h:8x/", "https://[::1/", "https://u:p@h/",
		"contoso.sharepoint.com/sites/x", "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(url_parse(bad[i], &p), -EINVAL);
}

static void test_scope_and_resource(void **state)
{
	static const char *const cases[][3] = {
		{"https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/.default",
		 "https://graph.microsoft.com"},
		{"https://graph.microsoft.us/v1.0/", "https://graph.microsoft.us/.default",
		 "https://graph.microsoft.us"},
		{"https://microsoftgraph.chinacloudapi.cn/v1.0",
		 "https://microsoftgraph.chinacloudapi.cn/.default",
		 "https://microsoftgraph.chinacloudapi.cn"},
		{"http://127.0.0.1:8443/v1.0", "http://127.0.0.1:8443/.default",
		 "http://127.0.0.1:8443"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *scope = url_scope_for_resource(cases[i][0]);
		char *res = url_resource_for(cases[i][0]);
		assert_string_equal(scope, cases[i][1]);
		assert_string_equal(res, cases[i][2]);
		free(scope);
		free(res);
	}
	assert_null(url_scope_for_resource("graph.microsoft.com"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_encoding),
		cmocka_unit_test(test_path_segment),
		cmocka_unit_test(test_join_one_slash),
		cmocka_unit_test(test_percent_decode),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_scope_and_resource),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
