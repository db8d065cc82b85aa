/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "options.h"

static int parse(struct options *o, struct buf *msg, int argc, char **argv)
{
	options_init(o);
	buf_reset(msg);
	return options_parse(o, argc, argv, msg);
}

static void test_check_with_options(void **state)
{
	char *argv[] = {"spfs",
			"--check",
			"https://contoso.sharepoint.com/sites/x",
			"-o",
			"auth=workload,graph_url=https://g/v1.0",
			"-ocafile=/ca.pem,log_level=debug",
			NULL};
	struct options o;
	struct buf msg;

	(void)state;
	buf_init(&msg, 1024);
	assert_int_equal(parse(&o, &msg, 6, argv), 0);
	assert_true(o.check);
	assert_string_equal(o.source, "https://contoso.sharepoint.com/sites/x");
	assert_null(o.mountpoint);
	assert_int_equal(o.auth.kind, AUTH_WORKLOAD);
	assert_string_equal(o.auth.graph_url, "https://g/v1.0");
	assert_string_equal(o.cafile, "/ca.pem");
	assert_int_equal(o.log_level, LOG_DEBUG);
	options_release(&o);
	buf_release(&msg);
}

static void test_secret_on_command_line_refused(void **state)
{
	char *argv[] = {"spfs", "--check", "-o", "client_secret=hunter2", NULL};
	struct options o;
	struct buf msg;

	(void)state;
	buf_init(&msg, 1024);
	assert_int_equal(parse(&o, &msg, 4, argv), -EINVAL);
	assert_non_null(
	    strstr(buf_str(&msg), "never accepted on the command line"));
	assert_non_null(strstr(buf_str(&msg), "AZURE_CLIENT_SECRET"));
	/* The message explains; it does not repeat the secret. */
	assert_null(strstr(buf_str(&msg), "hunter2"));
	options_release(&o);
	buf_release(&msg);
}

static void test_errors_say_what(void **state)
{
	char *unknown[] = {"spfs", "-o", "bogus=1", NULL};
	char *novalue[] = {"spfs", "-o", "cafile", NULL};
	char *badauth[] = {"spfs", "-o", "auth=kerberos", NULL};
	char *extra[] = {"spfs", "a", "b", "c", NULL};
	char *dangling[] = {"spfs", "-o", NULL};
	struct options o;
	struct buf msg;

	(void)state;
	buf_init(&msg, 1024);
	assert_int_equal(parse(&o, &msg, 3, unknown), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "bogus"));
	options_release(&o);
	assert_int_equal(parse(&o, &msg, 3, novalue), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "needs a value"));
	options_release(&o);
	assert_int_equal(parse(&o, &msg, 3, badauth), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "workload"));
	options_release(&o);
	assert_int_equal(parse(&o, &msg, 4, extra), -EINVAL);
	options_release(&o);
	assert_int_equal(parse(&o, &msg, 2, dangling), -EINVAL);
	options_release(&o);
	buf_release(&msg);
}

static void test_flags(void **state)
{
	char *argv[] = {"spfs", "-d", "-o", "allow_http", "src", "/mnt", NULL};
	struct options o;
	struct buf msg;

	(void)state;
	buf_init(&msg, 1024);
	assert_int_equal(parse(&o, &msg, 6, argv), 0);
	assert_true(o.debug);
	assert_true(o.foreground);
	assert_true(o.auth.allow_http);
	assert_string_equal(o.mountpoint, "/mnt");
	options_release(&o);
	buf_release(&msg);
}

static void test_sheets(void **state)
{
	char *on[] = {"spfs", "SRC", "/mnt", "-o", "sheets", NULL};
	char *off[] = {"spfs", "SRC", "/mnt", NULL};
	char *nocache[] = {"spfs", "SRC", "/mnt", "-o", "sheets,cache=off",
			   NULL};
	char *valued[] = {"spfs", "SRC", "/mnt", "-o", "sheets=yes", NULL};
	struct options o;
	struct buf msg;

	(void)state;
	buf_init(&msg, 1024);
	assert_int_equal(parse(&o, &msg, 5, on), 0);
	assert_true(o.sheets);
	options_release(&o);
	assert_int_equal(parse(&o, &msg, 3, off), 0);
	assert_false(o.sheets); /* off by default */
	options_release(&o);
	/* The CSVs live in the content cache. */
	assert_int_equal(parse(&o, &msg, 5, nocache), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "cache=off"));
	options_release(&o);
	assert_int_equal(parse(&o, &msg, 5, valued), -EINVAL);
	options_release(&o);
	buf_release(&msg);
}

/* Ownership, modes or other users' access turn on the kernel's permission
 * checks: without them uid=, gid= and umask= would restrict nothing. */
static void test_modes_turn_on_default_permissions(void **state)
{
	static const char *const lists[] = {"allow_other", "uid=1000",
					    "gid=1000", "umask=077"};
	char *plain[] = {"spfs", "src", "/mnt", NULL};
	struct options o;
	struct buf msg;

	(void)state;
	buf_init(&msg, 1024);
	assert_int_equal(parse(&o, &msg, 3, plain), 0);
	assert_false(o.default_permissions);
	options_release(&o);
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		char *argv[] = {"spfs", "-o",	(char *)lists[i],
				"src",	"/mnt", NULL};
		assert_int_equal(parse(&o, &msg, 5, argv), 0);
		assert_true(o.default_permissions);
		options_release(&o);
	}
	buf_release(&msg);
}

static void test_sizes(void **state)
{
	unsigned long long v;
	char *argv[] = {"spfs",
			"SRC",
			"/mnt",
			"-o",
			"cache=off,cache_size=2G,chunk_size=1M,readahead=0,"
			"small_file=512K,read_timeout=7.5",
			NULL};
	char *bad[] = {"spfs", "SRC", "/mnt", "-o", "chunk_size=1K", NULL};
	char *bad3[] = {"spfs", "SRC", "/mnt", "-o", "read_timeout=soon", NULL};
	char *bad2[] = {"spfs", "SRC", "/mnt", "-o", "cache=maybe", NULL};
	struct options o;
	struct buf msg;

	(void)state;
	assert_int_equal(options_parse_size("123", &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(options_parse_size("64K", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(options_parse_size("4MiB", &v), 0);
	assert_int_equal(v, 4u << 20);
	assert_int_equal(options_parse_size("1g", &v), 0);
	assert_int_equal(v, 1u << 30);
	assert_int_equal(options_parse_size("", &v), -EINVAL);
	assert_int_equal(options_parse_size("-1", &v), -EINVAL);
	assert_int_equal(options_parse_size("4X", &v), -EINVAL);
	assert_int_equal(options_parse_size("4MBx", &v), -EINVAL);
	assert_int_equal(options_parse_size("99999999999T", &v), -EINVAL);

	buf_init(&msg, 1024);
	options_init(&o);
	assert_int_equal(o.chunk_size, 4u << 20); /* defaults */
	assert_int_equal(o.readahead, 16u << 20);
	assert_true(o.read_timeout == 60);
	assert_false(o.cache_off);
	options_release(&o);
	assert_int_equal(parse(&o, &msg, 5, argv), 0);
	assert_true(o.cache_off);
	assert_int_equal(o.cache_size, 2ull << 30);
	assert_int_equal(o.chunk_size, 1u << 20);
	assert_int_equal(o.readahead, 0);
	assert_int_equal(o.small_file, 512u << 10);
	assert_true(o.read_timeout == 7.5);
	options_release(&o);
	assert_int_equal(parse(&o, &msg, 5, bad3), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "read_timeout=soon"));
	options_release(&o);
	assert_int_equal(parse(&o, &msg, 5, bad), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "chunk_size=1K"));
	options_release(&o);
	assert_int_equal(parse(&o, &msg, 5, bad2), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "on or off"));
	options_release(&o);
	buf_release(&msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_with_options),
	    cmocka_unit_test(test_secret_on_command_line_refused),
	    cmocka_unit_test(test_errors_say_what),
	    cmocka_unit_test(test_flags),
	    cmocka_unit_test(test_sheets),
	    cmocka_unit_test(test_modes_turn_on_default_permissions),
	    cmocka_unit_test(test_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
