/* SPDX-License-Identifier: MIT */
/* driveItem JSON -> graph_item: every field optional or odd. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "graph/graph.h"
#include "graph/item.h"

static int parse(const char *json, struct graph_item *it)
{
	return graph_item_parse(json, strlen(json), it);
}

static void test_sharepoint_file(void **state)
{
	/* PROTOCOL.md 5: a captured SharePoint item. */
	const char *json =
	    "{\"@microsoft.graph.downloadUrl\":\"https://c/_layouts/15/"
	    "download.aspx?UniqueId=x&tempauth=v1.e\","
	    "\"createdDateTime\":\"2021-03-11T18:49:47Z\","
	    "\"lastModifiedDateTime\":\"2021-03-11T18:49:48Z\","
	    "\"eTag\":\"\\\"{EDD00CE7-B74C-4C3E-BA3E-484CB41EF31D},1\\\"\","
	    "\"cTag\":\"\\\"c:{EDD00CE7-B74C-4C3E-BA3E-484CB41EF31D},2\\\"\","
	    "\"id\":\"01YT2AIJU7DAXTU6XLOJGYWYMTGM5JT5UQ\",\"name\":"
	    "\"MyPictureFile.png\",\"size\":2302233,"
	    "\"webUrl\":\"https://c/sites/G/Class%20Files/MyPictureFile.png\","
	    "\"lastModifiedBy\":{\"user\":{\"displayName\":\"James\"}},"
	    "\"parentReference\":{\"driveId\":\"b!x\",\"driveType\":"
	    "\"documentLibrary\",\"id\":\"01PARENT\","
	    "\"path\":\"/drives/b!x/root:/Assignments\"},"
	    "\"file\":{\"mimeType\":\"image/"
	    "png\",\"hashes\":{\"quickXorHash\":\"CvYQxN7MCGrIsdrA38c6wWhOu5g="
	    "\"}},"
	    "\"fileSystemInfo\":{\"createdDateTime\":\"2021-03-11T18:49:47Z\","
	    "\"lastModifiedDateTime\":\"2020-01-02T03:04:05.678Z\"},\"image\":{"
	    "}}";
	struct graph_item it;

	(void)state;
	assert_int_equal(parse(json, &it), 0);
	assert_string_equal(it.id, "01YT2AIJU7DAXTU6XLOJGYWYMTGM5JT5UQ");
	assert_string_equal(it.name, "MyPictureFile.png");
	assert_string_equal(it.parent_id, "01PARENT");
	assert_int_equal(it.size, 2302233);
	assert_false(it.is_folder);
	assert_string_equal(it.quickxorhash, "CvYQxN7MCGrIsdrA38c6wWhOu5g=");
	assert_string_equal(it.etag,
			    "\"{EDD00CE7-B74C-4C3E-BA3E-484CB41EF31D},1\"");
	assert_string_equal(it.modified_by, "James");
	assert_non_null(it.download_url);
	/* fileSystemInfo wins over the server time; fractions kept. */
	assert_int_equal(it.mtime.tv_sec, 1577934245);
	assert_int_equal(it.mtime.tv_nsec, 678000000);
	graph_item_release(&it);
}

static void test_folder_root_deleted_package(void **state)
{
	struct graph_item it;

	(void)state;
	assert_int_equal(
	    parse("{\"id\":\"F\",\"name\":\"Reports\",\"folder\":{"
		  "\"childCount\":7},"
		  "\"size\":10,\"parentReference\":{\"id\":\"R\"}}",
		  &it),
	    0);
	assert_true(it.is_folder);
	assert_int_equal(it.child_count, 7);
	assert_null(it.ctag);
	graph_item_release(&it);
	assert_int_equal(
	    parse("{\"id\":\"R\",\"name\":\"root\",\"root\":{},\"folder\":{}}",
		  &it),
	    0);
	assert_true(it.is_root && it.is_folder);
	assert_null(it.parent_id);
	graph_item_release(&it);
	/* Deleted items in delta have no name. */
	assert_int_equal(parse("{\"id\":\"D\",\"deleted\":{},"
			       "\"parentReference\":{\"id\":\"R\"}}",
			       &it),
			 0);
	assert_true(it.deleted);
	assert_null(it.name);
	graph_item_release(&it);
	assert_int_equal(parse("{\"id\":\"P\",\"name\":\"Notebook\","
			       "\"package\":{\"type\":\"oneNote\"}}",
			       &it),
			 0);
	assert_true(it.is_package);
	graph_item_release(&it);
	assert_int_equal(parse("{\"id\":\"M\",\"name\":\"bad.exe\",\"file\":{},"
			       "\"malware\":{}}",
			       &it),
			 0);
	assert_true(it.is_malware);
	graph_item_release(&it);
	/* Huge sizes are fine; missing times are zero. */
	assert_int_equal(
	    parse("{\"id\":\"H\",\"name\":\"h\",\"size\":268435456000}", &it),
	    0);
	assert_int_equal(it.size, 268435456000LL);
	graph_item_release(&it);
	assert_int_equal(
	    parse("{\"id\":\"H\",\"name\":\"h\",\"size\":9223372036854775807}",
		  &it),
	    0);
	assert_true(it.size == INT64_MAX);
	assert_int_equal(it.mtime.tv_sec, 0);
	graph_item_release(&it);
}

static void test_names(void **state)
{
	static const char *const good[] = {
	    "Q3 #1.csv",
	    "50% off.csv",
	    "R&D + ops",
	    "O'Brien",
	    "[draft] (v2)",
	    "café",
	    "日本語のファイル.csv",
	    "~tilde",
	    "a,b;c=d!",
	    "é",
	};
	static const char *const bad[] = {
	    "a/b",
	    ".",
	    "..",
	    "",
	    "bad\xff"
	    "utf8",
	    "over\xc0\xaf"
	    "long",
	    "\xed\xa0\x80",
	};
	char json[512];
	struct graph_item it;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(json, sizeof(json), "{\"id\":\"x\",\"name\":\"%s\"}",
			 good[i]);
		assert_int_equal(parse(json, &it), 0);
		assert_string_equal(it.name, good[i]);
		graph_item_release(&it);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(json, sizeof(json), "{\"id\":\"x\",\"name\":\"%s\"}",
			 bad[i]);
		assert_int_equal(parse(json, &it), -EINVAL);
	}
	/* NUL inside the JSON string. */
	assert_int_equal(parse("{\"id\":\"x\",\"name\":\"a\\u0000b\"}", &it),
			 -EINVAL);
	char longname[300];
	memset(longname, 'a', 256);
	longname[256] = '\0';
	snprintf(json, sizeof(json), "{\"id\":\"x\",\"name\":\"%s\"}",
		 longname);
	assert_int_equal(parse(json, &it), -EINVAL);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{",
	    "{\"name\":\"x\"}",
	    "{\"id\":5,\"name\":\"x\"}",
	    "{\"id\":\"\",\"name\":\"x\"}",
	    "{\"id\":\"x\",\"name\":\"x\",\"size\":-1}",
	    "{\"id\":\"x\",\"name\":\"x\",\"size\":\"big\"}",
	    /* Past INT64_MAX: json-c would clamp these to it, a wrong size. */
	    "{\"id\":\"x\",\"name\":\"x\",\"size\":9223372036854775808}",
	    "{\"id\":\"x\",\"name\":\"x\",\"size\":18446744073709551615}",
	    "{\"id\":\"x\",\"name\":\"x\",\"size\":18446744073709551616}",
	    "{\"id\":\"x\",\"name\":\"x\",\"size\":1e30}",
	    "{\"id\":\"x\",\"name\":\"x\",\"eTag\":7}",
	    "{\"id\":\"x\",\"name\":\"x\",\"lastModifiedDateTime\":"
	    "\"yesterday\"}",
	    "{\"id\":\"x\",\"name\":\"x\",\"lastModifiedDateTime\":\"2024-13-"
	    "01T00:00:00Z\"}",
	    "{\"id\":\"x\",\"name\":\"x\",\"parentReference\":{\"id\":[1]}}",
	};
	struct graph_item it;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], &it), -EINVAL);
}

static void test_times(void **state)
{
	struct timespec ts;

	(void)state;
	assert_int_equal(graph_parse_time("1970-01-01T00:00:00Z", &ts), 0);
	assert_int_equal(ts.tv_sec, 0);
	assert_int_equal(graph_parse_time("2024-02-29T23:59:59.9999999Z", &ts),
			 0);
	assert_int_equal(ts.tv_sec, 1709251199);
	assert_int_equal(ts.tv_nsec, 999999900);
	assert_int_equal(graph_parse_time("2024-02-29T23:59:59", &ts), -EINVAL);
	assert_int_equal(graph_parse_time("2024-02-29 23:59:59Z", &ts),
			 -EINVAL);
}

struct seen {
	int n;
	int stop_at; /* return -EINTR on this item (1-based), 0: never */
	char names[8][32];
};

static int count_item(void *ctx, const struct graph_item *it)
{
	struct seen *s = ctx;

	if (s->n < 8)
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", it->name);
	s->n++;
	return s->n == s->stop_at ? -EINTR : 0;
}

static void test_page(void **state)
{
	(void)state;
	const char *page =
	    "{\"value\": [{\"id\": \"A\", \"name\": \"a.csv\", \"size\": 1},"
	    " {\"id\": \"B\", \"name\": \"x/y\"}, {\"id\": \"C\", \"name\": "
	    "\"..\"},"
	    " {\"id\": \"D\", \"name\": \"d\", \"size\": \"2\"}, 42, null,"
	    " {\"id\": \"E\", \"name\": \"e\", \"folder\": {}}],"
	    " \"@odata.nextLink\": \"https://g/next?x=1\"}";
	struct graph_page p;
	struct seen s = {0};

	assert_int_equal(
	    graph_page_parse(page, strlen(page), "t", count_item, &s, &p), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "a.csv");
	assert_string_equal(s.names[1], "e");
	assert_int_equal(p.items, 2);
	assert_int_equal(p.skipped, 5);
	assert_string_equal(p.next_link, "https://g/next?x=1");
	assert_null(p.delta_link);
	graph_page_release(&p);

	/* The callback's error stops the page and is returned. */
	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	assert_int_equal(
	    graph_page_parse(page, strlen(page), "t", count_item, &s, &p),
	    -EINTR);
	assert_null(p.next_link);

	/* Not a page: -EIO, nothing called. */
	const char *bad[] = {"[]", "{\"value\": \"x\"}", "{\"value\": [", "",
			     "{\"value\": []} trailing"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&s, 0, sizeof(s));
		assert_int_equal(graph_page_parse(bad[i], strlen(bad[i]), "t",
						  count_item, &s, &p),
				 -EIO);
		assert_int_equal(s.n, 0);
	}

	const char *last =
	    "{\"value\": [], \"@odata.deltaLink\": \"https://g/d\"}";
	assert_int_equal(
	    graph_page_parse(last, strlen(last), "t", count_item, &s, &p), 0);
	assert_string_equal(p.delta_link, "https://g/d");
	assert_int_equal(p.items + p.skipped, 0);
	graph_page_release(&p);
}

static void test_error_code(void **state)
{
	(void)state;
	char code[32];
	const char *nested =
	    "{\"error\": {\"code\": \"accessDenied\", \"innerError\": "
	    "{\"code\": \"outer\", \"innererror\": {\"code\": "
	    "\"resyncRequired\"}}}}";

	graph_error_code(nested, strlen(nested), code, sizeof(code));
	assert_string_equal(code, "resyncRequired");
	graph_error_code("not json", 8, code, sizeof(code));
	assert_string_equal(code, "-");
	graph_error_code(NULL, 0, code, sizeof(code));
	assert_string_equal(code, "-");
	/* Whatever the service sends, the log line gets a plain token. */
	const char *hostile = "{\"error\": {\"code\": \"a\\nb c\\u001b[31m\"}}";
	graph_error_code(hostile, strlen(hostile), code, sizeof(code));
	assert_string_equal(code, "a?b?c??31m");
	graph_error_code(nested, strlen(nested), code, 4);
	assert_string_equal(code, "res");
	/* An embedded NUL neither empties nor cuts the code. */
	const char *nul = "{\"error\": {\"code\": \"\\u0000x\\u0000y\"}}";
	graph_error_code(nul, strlen(nul), code, sizeof(code));
	assert_string_equal(code, "?x?y");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sharepoint_file),
	    cmocka_unit_test(test_folder_root_deleted_package),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_page),
	    cmocka_unit_test(test_error_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
