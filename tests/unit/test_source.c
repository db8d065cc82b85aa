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

/* What the browser's address bar shows inside a folder, and sharing links
 * that carry their path. */
static void test_folder_pages_and_path_links(void **state)
{
	const char *reports[] = {"Shared Documents", "Reports", "2026"};
	const char *root_x[] = {"Shared Documents", "x y"};
	const char *lib[] = {"Shared Documents", "Reports"};

	(void)state;
	expect("https://contoso.sharepoint.com/sites/Finance/"
	       "Shared%20Documents/Forms/AllItems.aspx?id=%2Fsites%2FFinance%"
	       "2FShared%20Documents%2FReports%2F2026&viewid=1e2f",
	       "contoso.sharepoint.com", "/sites/Finance", 3, reports);
	/* Older views say RootFolder=, and the site's case may differ. */
	expect("https://contoso.sharepoint.com/sites/Finance/"
	       "Shared%20Documents/Forms/AllItems.aspx?RootFolder=%2Fsites%"
	       "2Ffinance%2FShared%20Documents%2FReports%2F2026",
	       "contoso.sharepoint.com", "/sites/Finance", 3, reports);
	expect("https://contoso.sharepoint.com/Shared%20Documents/Forms/"
	       "AllItems.aspx?id=%2FShared%20Documents%2Fx%20y",
	       "contoso.sharepoint.com", "", 2, root_x);
	expect("https://contoso.sharepoint.com/:f:/r/sites/Finance/"
	       "Shared%20Documents/Reports?csf=1&web=1&e=AbC123",
	       "contoso.sharepoint.com", "/sites/Finance", 2, lib);
}

static void test_sharing_links(void **state)
{
	struct source s;
	struct buf msg, id;

	(void)state;
	buf_init(&msg, 1024);
	buf_init(&id, 1024);
	/* A token link: resolved through Graph's shares endpoint. */
	const char *link =
	    "https://contoso.sharepoint.com/:f:/s/Finance/Eab~~?e=>?";
	assert_int_equal(source_parse(link, &s, &msg), 0);
	assert_string_equal(s.share_url, link);
	assert_string_equal(s.host, "contoso.sharepoint.com");
	assert_int_equal(s.nsegments, 0);
	assert_int_equal(source_share_id(s.share_url, &id), 0);
	/* u! + unpadded base64url (- and _ where base64 has + and /). */
	assert_string_equal(id.data,
			    "u!aHR0cHM6Ly9jb250b3NvLnNoYXJlcG9pbnQuY29tLzpmOi9z"
			    "L0ZpbmFuY2UvRWFifn4_ZT0-Pw");
	source_release(&s);
	assert_int_equal(
	    source_parse("https://contoso.sharepoint.com/:f:/g/personal/"
			 "x/Etoken",
			 &s, &msg),
	    0);
	assert_non_null(s.share_url);
	source_release(&s);
	/* Links to files cannot be mounted: say what to paste instead. */
	buf_reset(&msg);
	assert_int_equal(
	    source_parse("https://contoso.sharepoint.com/:x:/s/Finance/"
			 "EbcD?e=1",
			 &s, &msg),
	    -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "sharing link to a file (:x:)"));
	assert_non_null(strstr(buf_str(&msg), "folder"));
	buf_release(&msg);
	buf_release(&id);
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
	    /* A folder page whose id= is in another site or library. */
	    "https://contoso.sharepoint.com/sites/Finance/Shared%20Documents/"
	    "Forms/AllItems.aspx?id=%2Fsites%2FOther%2FShared%20Documents",
	    "https://contoso.sharepoint.com/sites/Finance/Shared%20Documents/"
	    "Forms/AllItems.aspx?id=%2Fsites%2FFinance%2FArchive%2Fx",
	    "https://contoso.sharepoint.com/sites/Finance/Shared%20Documents/"
	    "Forms/AllItems.aspx?id=%zz",
	    "https://contoso.sharepoint.com/:w:/r/sites/Finance/a.docx",
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
	    cmocka_unit_test(test_folder_pages_and_path_links),
	    cmocka_unit_test(test_sharing_links),
	    cmocka_unit_test(test_drive_form),
	    cmocka_unit_test(test_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
