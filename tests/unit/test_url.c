/* SPDX-License-Identifier: MIT */
/* URL helpers: encodings, one-slash joins, the http(s) parser, scopes. */
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

#include "base/url.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int is_unreserved(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* Every byte 1..255 on its own: unreserved kept, the rest %XX upper case. */
static void test_form_encode_every_byte(void **state)
{
	struct buf b;
	char in[2] = {0, 0}, want[4];

	(void)state;
	buf_init(&b, 64);
	for (int c = 1; c < 256; c++) {
		in[0] = (char)c;
		if (is_unreserved(c))
			snprintf(want, sizeof(want), "%c", c);
		else
			snprintf(want, sizeof(want), "%%%02X", c);
		buf_reset(&b);
		assert_int_equal(url_form_encode(&b, in), 0);
		assert_string_equal(buf_str(&b), want);
		buf_reset(&b);
		assert_int_equal(url_path_segment_encode(&b, in, 1), 0);
		assert_string_equal(buf_str(&b), want);
	}
	buf_release(&b);
}

static void test_form_encoding(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(url_form_add(&b, "grant_type", "client_credentials"),
			 0);
	assert_string_equal(buf_str(&b), "grant_type=client_credentials");
	assert_int_equal(
	    url_form_add(&b, "scope", "https://graph.microsoft.com/.default"),
	    0);
	assert_int_equal(url_form_add(&b, "x y", "a+b&c=d%e é~._-"), 0);
	assert_int_equal(url_form_add(&b, "empty", ""), 0);
	assert_string_equal(
	    buf_str(&b), "grant_type=client_credentials"
			 "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
			 "&x%20y=a%2Bb%26c%3Dd%25e%20%C3%A9~._-"
			 "&empty=");
	buf_reset(&b);
	/* UTF-8 is encoded byte by byte; the encoder never decodes. */
	assert_int_equal(url_form_encode(&b, "Zürich 日本 \xf0\x9f\x98\x80"),
			 0);
	assert_string_equal(buf_str(&b),
			    "Z%C3%BCrich%20%E6%97%A5%E6%9C%AC%20%F0%9F%98%80");
	buf_reset(&b);
	/* A compact JWT is all unreserved bytes and goes out unchanged; a
	 * padded one gets its '=' escaped. */
	assert_int_equal(url_form_encode(&b, "eyJ0.eyJ1_-.c2ln=="), 0);
	assert_string_equal(buf_str(&b), "eyJ0.eyJ1_-.c2ln%3D%3D");
	buf_release(&b);
}

static void test_form_bounded(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(url_form_encode(&b, "abc"), 0);
	/* Three escapes need 9 more bytes: -EFBIG, and the buffer never
	 * holds half an escape. */
	assert_int_equal(url_form_encode(&b, "   "), -EFBIG);
	assert_string_equal(buf_str(&b), "abc%20");
	buf_release(&b);
}

static void test_path_segment(void **state)
{
	struct buf b;
	const char *name = "Q3 #1 50% a/b?c [x] (y) 日本.csv";

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(url_path_segment_encode(&b, name, strlen(name)), 0);
	assert_string_equal(buf_str(&b),
			    "Q3%20%231%2050%25%20a%2Fb%3Fc%20%5Bx%5D%20%28y%29%"
			    "20%E6%97%A5%E6%9C%AC.csv");
	buf_reset(&b);
	/* len bounds the segment (a component of a longer path). */
	assert_int_equal(url_path_segment_encode(&b, "a b/c d", 3), 0);
	assert_string_equal(buf_str(&b), "a%20b");
	buf_reset(&b);
	assert_int_equal(url_path_segment_encode(&b, "", 0), 0);
	assert_string_equal(buf_str(&b), "");
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
	const char *aks[] = {"72f988bf-86f1-41af-91ab-2d7cd011db47",
			     "oauth2/v2.0/token"};
	const char *lead[] = {"tenant", "/oauth2/v2.0/token"};
	const char *slashy[] = {"/tenant/", "//oauth2/v2.0/token//"};
	const char *empty[] = {"", "x", "/", "//", "y"};
	const char *inner[] = {"a//b"};
	const char *well_known[] = {".well-known/openid-configuration"};
	const char *const want =
	    "https://login.microsoftonline.com/"
	    "72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";

	(void)state;
	/* AZURE_AUTHORITY_HOST as the webhook injects it (trailing slash). */
	expect_join("https://login.microsoftonline.com/", aks, 2, want);
	expect_join("https://login.microsoftonline.com", aks, 2, want);
	expect_join("https://login.microsoftonline.com//", aks, 2, want);
	expect_join(
	    "https://login.microsoftonline.com/", lead, 2,
	    "https://login.microsoftonline.com/tenant/oauth2/v2.0/token");
	expect_join("https://h:8443//", slashy, 2,
		    "https://h:8443/tenant/oauth2/v2.0/token");
	expect_join("https://h", empty, 5, "https://h/x/y");
	expect_join("https://h/", NULL, 0, "https://h");
	/* Slashes inside a part are the caller's business. */
	expect_join("https://h", inner, 1, "https://h/a//b");
	/* A base with a path keeps it. */
	expect_join("https://oidc.example/tenant/cluster/", well_known, 1,
		    "https://oidc.example/tenant/cluster/.well-known/"
		    "openid-configuration");
	expect_join("http://169.254.169.254",
		    (const char *[]){"metadata/identity/oauth2/token"}, 1,
		    "http://169.254.169.254/metadata/identity/oauth2/token");
}

static void test_percent_decode(void **state)
{
	char *out;

	(void)state;
	assert_int_equal(url_percent_decode("Shared%20Documents", 18, &out), 0);
	assert_string_equal(out, "Shared Documents");
	free(out);
	assert_int_equal(url_percent_decode("%e6%97%a5%E6%9C%AC", 18, &out), 0);
	assert_string_equal(out, "日本");
	free(out);
	/* '+' is not a space here; %2F decodes to '/'. */
	assert_int_equal(url_percent_decode("a+b%2Fc", 7, &out), 0);
	assert_string_equal(out, "a+b/c");
	free(out);
	assert_int_equal(url_percent_decode("", 0, &out), 0);
	assert_string_equal(out, "");
	free(out);
	/* Encoding then decoding is the identity. */
	struct buf b;
	const char *orig = "50% #1 ?&= é/~";
	buf_init(&b, 256);
	assert_int_equal(url_form_encode(&b, orig), 0);
	assert_int_equal(url_percent_decode(b.data, b.len, &out), 0);
	assert_string_equal(out, orig);
	free(out);
	buf_release(&b);

	static const char *const bad[] = {
	    "a%2", "a%", "%", "%zz", "%2g", "%g2", "a%00b", "%0", "% 20",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		out = (char *)1;
		assert_int_equal(
		    url_percent_decode(bad[i], strlen(bad[i]), &out), -EINVAL);
		assert_null(out);
	}
	/* A literal NUL inside len is refused too. */
	assert_int_equal(url_percent_decode("a\0b", 3, &out), -EINVAL);
	/* len bounds the input: the escape past it is not seen. */
	assert_int_equal(url_percent_decode("ab%20", 2, &out), 0);
	assert_string_equal(out, "ab");
	free(out);
	/* ...and an escape cut by len is malformed. */
	assert_int_equal(url_percent_decode("ab%20", 4, &out), -EINVAL);
}

static void expect_parse(const char *url, const char *scheme, const char *host,
			 int port, const char *path, const char *query)
{
	struct url_parts p;

	assert_int_equal(url_parse(url, &p), 0);
	assert_string_equal(p.scheme, scheme);
	assert_string_equal(p.host, host);
	assert_int_equal(p.port, port);
	assert_string_equal(p.path, path);
	if (query)
		assert_string_equal(p.query, query);
	else
		assert_null(p.query);
	url_parts_release(&p);
	url_parts_release(&p); /* idempotent */
}

static void test_parse(void **state)
{
	(void)state;
	expect_parse("https://Contoso.SharePoint.com/sites/Finance/"
		     "Shared%20Documents?a=1#f",
		     "https", "contoso.sharepoint.com", 0,
		     "/sites/Finance/Shared%20Documents", "a=1");
	expect_parse("http://127.0.0.1:8443", "http", "127.0.0.1", 8443, "/",
		     NULL);
	expect_parse("HTTPS://graph.microsoft.com/v1.0/", "https",
		     "graph.microsoft.com", 0, "/v1.0/", NULL);
	expect_parse("https://h:1/", "https", "h", 1, "/", NULL);
	expect_parse("https://h:65535/x", "https", "h", 65535, "/x", NULL);
	expect_parse("https://h:443/x", "https", "h", 443, "/x", NULL);
	/* Query without a path; empty query; fragment only. */
	expect_parse("https://h?x=1&y=%20", "https", "h", 0, "/", "x=1&y=%20");
	expect_parse("https://h/p?", "https", "h", 0, "/p", "");
	expect_parse("https://h#frag", "https", "h", 0, "/", NULL);
	expect_parse("https://h/a?b#c?d", "https", "h", 0, "/a", "b");
	/* Graph nextLinks keep $skiptoken and encoded commas verbatim. */
	expect_parse("https://graph.microsoft.com/v1.0/drives/b!x/root/"
		     "delta?$select=*%2csharepointIds&token=abc",
		     "https", "graph.microsoft.com", 0,
		     "/v1.0/drives/b!x/root/delta",
		     "$select=*%2csharepointIds&token=abc");
	/* IPv6 literals, with and without port. */
	expect_parse("https://[::1]:9/x", "https", "::1", 9, "/x", NULL);
	expect_parse("http://[::1]", "http", "::1", 0, "/", NULL);
	expect_parse("http://[fe80::1:AB]:8080?q", "http", "fe80::1:ab", 8080,
		     "/", "q");
	expect_parse("http://[::ffff:10.0.0.1]/", "http", "::ffff:10.0.0.1", 0,
		     "/", NULL);
}

static void test_parse_rejects(void **state)
{
	struct url_parts p;
	static const char *const bad[] = {
	    "",
	    "ftp://h/",
	    "file:///etc/passwd",
	    "ws://h/",
	    "https:/h/",
	    "//h/x",
	    "https://",
	    "https:///x",
	    "https://:80/",
	    "https://h:/",
	    "https://h:0/",
	    "https://h:08443/",
	    "https://h:99999/",
	    "https://h:65536/",
	    "https://h:8x/",
	    "https://h:-1/",
	    "https://[::1/",
	    "https://[]/",
	    "https://[::1]x/",
	    "https://[::1]:/",
	    "https://[zz::1]/",
	    "https://[1.2.3.4]/",
	    "https://u:p@h/",
	    "https://@h/",
	    "https://h h/",
	    "https://h/a b",
	    "https://h/\n",
	    "https://h/\t",
	    "https://h\x7f/",
	    "https://h%41/",
	    "https://h\\@evil/",
	    "https://h/é",
	    "contoso.sharepoint.com/sites/x",
	    "https://h!/",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&p, 0x5a, sizeof(p));
		if (url_parse(bad[i], &p) != -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
		/* Nothing to release after a failure. */
		assert_null(p.scheme);
		assert_null(p.host);
		assert_null(p.path);
		assert_null(p.query);
	}
	assert_int_equal(url_parse(NULL, &p), -EINVAL);
}

static void test_scope_and_resource(void **state)
{
	static const char *const cases[][3] = {
	    {"https://graph.microsoft.com/v1.0",
	     "https://graph.microsoft.com/.default",
	     "https://graph.microsoft.com"},
	    {"https://graph.microsoft.com",
	     "https://graph.microsoft.com/.default",
	     "https://graph.microsoft.com"},
	    {"https://graph.microsoft.com/beta/",
	     "https://graph.microsoft.com/.default",
	     "https://graph.microsoft.com"},
	    {"https://Graph.Microsoft.com:443/v1.0",
	     "https://graph.microsoft.com/.default",
	     "https://graph.microsoft.com"},
	    /* Sovereign clouds: US Government (L4, L5/DoD), China. */
	    {"https://graph.microsoft.us/v1.0/",
	     "https://graph.microsoft.us/.default",
	     "https://graph.microsoft.us"},
	    {"https://dod-graph.microsoft.us/v1.0",
	     "https://dod-graph.microsoft.us/.default",
	     "https://dod-graph.microsoft.us"},
	    {"https://microsoftgraph.chinacloudapi.cn/v1.0",
	     "https://microsoftgraph.chinacloudapi.cn/.default",
	     "https://microsoftgraph.chinacloudapi.cn"},
	    /* The emulator. */
	    {"http://127.0.0.1:8443/v1.0", "http://127.0.0.1:8443/.default",
	     "http://127.0.0.1:8443"},
	    {"https://127.0.0.1:8443/v1.0?x=1#y",
	     "https://127.0.0.1:8443/.default", "https://127.0.0.1:8443"},
	    {"http://localhost:80/v1.0", "http://localhost/.default",
	     "http://localhost"},
	    {"http://[::1]:8443/v1.0", "http://[::1]:8443/.default",
	     "http://[::1]:8443"},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *scope = url_scope_for_resource(cases[i][0]);
		char *res = url_resource_for(cases[i][0]);
		assert_non_null(scope);
		assert_non_null(res);
		assert_string_equal(scope, cases[i][1]);
		assert_string_equal(res, cases[i][2]);
		free(scope);
		free(res);
	}
	assert_null(url_scope_for_resource("graph.microsoft.com"));
	assert_null(url_resource_for("graph.microsoft.com/v1.0"));
	assert_null(url_scope_for_resource("ftp://graph.microsoft.com/v1.0"));
	assert_null(url_scope_for_resource(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_form_encode_every_byte),
	    cmocka_unit_test(test_form_encoding),
	    cmocka_unit_test(test_form_bounded),
	    cmocka_unit_test(test_path_segment),
	    cmocka_unit_test(test_join_one_slash),
	    cmocka_unit_test(test_percent_decode),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_scope_and_resource),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
