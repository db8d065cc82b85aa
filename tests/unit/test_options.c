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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_with_options),
	    cmocka_unit_test(test_secret_on_command_line_refused),
	    cmocka_unit_test(test_errors_say_what),
	    cmocka_unit_test(test_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
