/* SPDX-License-Identifier: MIT */
/* spfs's command line as the mounter builds it, and what spfs --check's
 * reports (as spfs prints them) mean for the CO. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "csi/spfs_cmd.h"

static struct csi_volume volume(void)
{
	struct csi_volume v;

	csi_volume_init(&v);
	v.source = "https://contoso.sharepoint.com/sites/Finance";
	v.client_id = "11111111-2222-3333-4444-555555555555";
	v.tenant_id = "contoso.onmicrosoft.com";
	v.options = "cache_size=2G";
	return v;
}

static const struct spfs_cmd_files files = {
    .mnt = "/s/daemons/K/mnt",
    .token_file = "/s/daemons/K/token",
    .cache_dir = "/s/daemons/K/cache",
};

static void test_daemon_argv(void **state)
{
	struct csi_volume v = volume();
	struct spfs_cmd c;

	(void)state;
	assert_int_equal(spfs_cmd_build(&c, "/usr/bin/spfs", false, &v, &files,
					"graph_url=https://g/v1.0"),
			 0);
	assert_string_equal(c.argv[0], "/usr/bin/spfs");
	assert_string_equal(c.argv[1], "-f");
	assert_string_equal(c.argv[2], v.source);
	assert_string_equal(c.argv[3], files.mnt);
	assert_string_equal(c.argv[4], "-o");
	/* The mounter's own options come last: nothing before overrides
	 * the identity, the token file or the cache. */
	assert_string_equal(
	    c.argv[5],
	    "graph_url=https://g/v1.0,cache_size=2G,auth=workload,"
	    "client_id=11111111-2222-3333-4444-555555555555,"
	    "tenant_id=contoso.onmicrosoft.com,token_file=/s/daemons/K/token,"
	    "cache_dir=/s/daemons/K/cache,allow_other");
	assert_null(c.argv[6]);
	spfs_cmd_release(&c);

	v.options = "";
	assert_int_equal(
	    spfs_cmd_build(&c, "/usr/bin/spfs", true, &v, &files, NULL), 0);
	assert_string_equal(c.argv[1], "--check");
	assert_string_equal(c.argv[2], v.source);
	assert_string_equal(c.argv[3], "-o");
	assert_int_equal(strncmp(c.argv[4], "auth=workload,", 14), 0);
	assert_null(c.argv[5]);
	spfs_cmd_release(&c);
}

/* Reports as spfs 0.1 prints them (stderr's log lines come first: stdout
 * is a pipe, flushed at exit). */
static const char refused[] =
    "2026-12-01T22:40:28.064Z spfs[22399] error: workload identity: no "
    "federated credential on client f8b2 matches issuer 'https://i/' and "
    "subject 'system:serviceaccount:data:other': create one (AADSTS70021, "
    "trace ceba)\n"
    "spfs 0.1.0 --check\n"
    "credential: workload identity\n"
    "access token: FAILED after 65 ms\n"
    "  no federated credential on client f8b2 matches issuer 'https://i/' "
    "and subject 'system:serviceaccount:data:other': create one with "
    "exactly that issuer (AADSTS70021, trace ceba)\n"
    "result: FAILED\n";

static const char no_library[] =
    "spfs 0.1.0 --check\n"
    "access token: obtained in 53 ms\n"
    "source: https://contoso.sharepoint.com/sites/Finance/Nope\n"
    "site: https://contoso.sharepoint.com/sites/Finance\n"
    "  FAILED: library 'Nope' not found in "
    "https://contoso.sharepoint.com/sites/Finance; libraries there: "
    "\"Documents\"\n"
    "result: FAILED\n";

static const char denied[] =
    "access token: obtained in 53 ms\n"
    "source: https://contoso.sharepoint.com/teams/Ops\n"
    "  FAILED: site https://contoso.sharepoint.com/teams/Ops: access "
    "denied (HTTP 403, request-id 1). With Sites.Selected the identity "
    "needs a grant on the site\n"
    "result: FAILED\n";

static const char unreachable[] =
    "access token: FAILED after 3000 ms\n"
    "  cannot reach https://login.microsoftonline.com/: Connection "
    "refused\n"
    "result: FAILED\n";

static void expect(int status, const char *report, enum csi_code code,
		   const char *words)
{
	struct buf msg;

	buf_init(&msg, 4096);
	assert_int_equal(spfs_check_explain(status, report, &msg), code);
	if (!strstr(buf_str(&msg), words))
		fail_msg("'%s' lacks '%s'", buf_str(&msg), words);
	assert_null(strchr(buf_str(&msg), '\n'));
	buf_release(&msg);
}

static void test_check_reports(void **state)
{
	(void)state;
	expect(1, refused, CSI_PERMISSION_DENIED,
	       "no federated credential on client f8b2");
	expect(1, refused, CSI_PERMISSION_DENIED, "AADSTS70021");
	expect(1, no_library, CSI_NOT_FOUND, "library 'Nope' not found");
	expect(1, denied, CSI_PERMISSION_DENIED, "HTTP 403");
	expect(1, unreachable, CSI_UNAVAILABLE, "Connection refused");
	expect(2, "spfs: -o cache_size=lots: expected a size such as 512K\n",
	       CSI_INVALID_ARGUMENT, "-o cache_size=lots");
	expect(1,
	       "x error: the certificate cannot be used\nresult: FAILED: "
	       "the workload identity credential cannot be used\n",
	       CSI_UNAVAILABLE, "the certificate cannot be used");
	expect(137, "", CSI_DEADLINE_EXCEEDED, "printed nothing");
	/* The report lost (spfs died before flushing stdout), the refusal
	 * it logged kept. */
	expect(23,
	       "t spfs[1] error: workload identity: no federated credential "
	       "(AADSTS70021, trace x)\n==1==ERROR: LeakSanitizer: detected "
	       "memory leaks\n",
	       CSI_PERMISSION_DENIED, "AADSTS70021");
}

static void test_log_explain(void **state)
{
	struct buf msg;

	(void)state;
	buf_init(&msg, 4096);
	spfs_log_explain("t spfs[1] info: starting\n"
			 "t spfs[1] error: site not found: check SOURCE\n"
			 "t spfs[1] info: bye\n\n",
			 &msg);
	assert_string_equal(buf_str(&msg), "site not found: check SOURCE");
	buf_reset(&msg);
	spfs_log_explain("one\ntwo\n", &msg);
	assert_string_equal(buf_str(&msg), "two");
	buf_release(&msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_daemon_argv),
	    cmocka_unit_test(test_check_reports),
	    cmocka_unit_test(test_log_explain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
