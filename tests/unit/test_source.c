/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "graph/source.h"

static void expect(const char *text, const char *host, const char *site,
		   size_t n, const char *const *segs)
{
	struct source s;
	struct buf msg;

	buf_init(&msg, 1024);
	assert_int_equal(source_parse(text, &s, &msg), 0);
	assert_string_equal(s.host, host);
	assert_string_equal(s.site_path, site);
	assert_int_equal(s.nsegments, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(s.segments[i], segs[i]);
	source_release(&s);
	buf_release(&msg);
}

static void test_url_forms(void **state)
{
	const char *lib[] = {"Shared Documents", "reports", "2026"};
	const char *title[] = {"Documents"};
	const char *root_lib[] = {"Shared Documents"};

	(void)state;
	expect("https://contoso.sharepoint.com/sites/Finance",
	       "contoso.sharepoint.com", "/sites/Finance", 0, NULL);
	expect("https://Contoso.SharePoint.com/sites/Finance/",
	       "contoso.sharepoint.com", "/sites/Finance", 0, NULL);
	expect("https://contoso.sharepoint.com/sites/Finance/"
	       "Shared%20Documents/reports/2026",
	       "contoso.sharepoint.com", "/sites/Finance", 3, lib);
	expect("https://contoso.sharepoint.com/sites/Finance/Shared "
	       "Documents/reports/2026",
	       "contoso.sharepoint.com", "/sites/Finance", 3, lib);
	expect("https://contoso.sharepoint.com/teams/Ops/Documents",
	       "contoso.sharepoint.com", "/teams/Ops", 1, title);
	expect("https://contoso.sharepoint.com", "contoso.sharepoint.com", "",
	       0, NULL);
	expect("https://contoso.sharepoint.com/Shared%20Documents",
	       "contoso.sharepoint.com", "", 1, root_lib);
	/* What the browser shows on a library's page. */
	expect("https://contoso.sharepoint.com/sites/Finance/"
	       "Shared%20Documents/Forms/AllItems.aspx?viewid=x",
	       "contoso.sharepoint.com", "/sites/Finance", 1, root_lib);
}

static void test_drive_form(void **state)
{
	struct source s;
	struct buf msg;

	(void)state;
	buf_init(&msg, 1024);
	assert_int_equal(source_parse("drive:b!abc-_", &s, &msg), 0);
	assert_string_equal(s.drive_id, "b!abc-_");
	assert_null(s.folder);
	source_release(&s);
	assert_int_equal(source_parse("drive:b!abc:/reports/2026/", &s, &msg),
			 0);
	assert_string_equal(s.drive_id, "b!abc");
	assert_string_equal(s.folder, "reports/2026");
	source_release(&s);
	buf_release(&msg);
}

static void test_rejects(void **state)
{
	static const char *const bad[] = {
	    "contoso.sharepoint.com/sites/x",
	    "http://contoso.sharepoint.com/sites/x",
	    "ftp://x/",
	    "drive:",
	    "drive::/x",
	    "https://contoso.sharepoint.com/sites",
	    "https://contoso.sharepoint.com/sites/x/bad%zz",
	    "",
	};
	struct source s;
	struct buf msg;

	(void)state;
	buf_init(&msg, 1024);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&msg);
		assert_int_equal(source_parse(bad[i], &s, &msg), -EINVAL);
		assert_true(msg.len > 0);
	}
	buf_release(&msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_forms),
	    cmocka_unit_test(test_drive_form),
	    cmocka_unit_test(test_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
