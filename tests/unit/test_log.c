/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

/* Runs fn with the log pointed at a temp file; returns what was written. */
static char *capture(void (*fn)(void))
{
	char path[] = "/tmp/spfs-test-log-XXXXXX";
	int fd = mkstemp(path);
	static char out[16384];

	assert_true(fd >= 0);
	unlink(path);
	log_set_fd(fd);
	fn();
	log_set_fd(STDERR_FILENO);
	off_t n = lseek(fd, 0, SEEK_CUR);
	assert_true(n >= 0 && (size_t)n < sizeof(out));
	assert_int_equal(pread(fd, out, (size_t)n, 0), n);
	out[n] = '\0';
	close(fd);
	return out;
}

/* capture() with text lines at level (then back to the default, info). */
static char *capture_text_at(enum log_level level, void (*fn)(void))
{
	log_set_format(LOG_FORMAT_TEXT);
	log_set_level(level);
	char *out = capture(fn);
	log_set_level(LOG_INFO);
	return out;
}

static void emit_levels(void)
{
	log_error("e %d", 1);
	log_warn("w");
	log_info("i");
	log_debug("d");
}

static void test_level_filter(void **state)
{
	(void)state;
	char *out = capture_text_at(LOG_WARN, emit_levels);
	assert_non_null(strstr(out, " error: e 1\n"));
	assert_non_null(strstr(out, " warn: w\n"));
	assert_null(strstr(out, " info: "));
	assert_null(strstr(out, " debug: "));
	out = capture_text_at(LOG_DEBUG, emit_levels);
	assert_non_null(strstr(out, " debug: d\n"));
}

static void *warn_from_another_thread(void *arg)
{
	(void)arg;
	log_warn("other thread");
	return NULL;
}

static void emit_demoted(void)
{
	pthread_t t;

	log_demote_warnings(true);
	log_warn("demoted");
	log_error("still an error");
	/* Only the calling thread is demoted. */
	assert_int_equal(
	    pthread_create(&t, NULL, warn_from_another_thread, NULL), 0);
	pthread_join(t, NULL);
	log_demote_warnings(false);
	log_warn("warned again");
}

static void test_demoted_warnings(void **state)
{
	(void)state;
	char *out = capture_text_at(LOG_INFO, emit_demoted);
	assert_null(strstr(out, "demoted"));
	assert_non_null(strstr(out, " error: still an error\n"));
	assert_non_null(strstr(out, " warn: other thread\n"));
	assert_non_null(strstr(out, " warn: warned again\n"));
	out = capture_text_at(LOG_DEBUG, emit_demoted);
	assert_non_null(strstr(out, " debug: demoted\n"));
}

static void emit_hostile(void)
{
	log_info("quote\" backslash\\ newline\n tab\t ctl\x01 end");
}

static void test_json_escapes_and_one_line(void **state)
{
	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	char *out = capture(emit_hostile);
	log_set_format(LOG_FORMAT_TEXT);

	assert_non_null(strstr(out, "\"level\":\"info\""));
	assert_non_null(strstr(out,
			       "\"msg\":\"quote\\\" backslash\\\\ newline\\n"
			       " tab\\t ctl\\u0001 end\"}"));
	/* Exactly one line. */
	assert_non_null(strchr(out, '\n'));
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
}

/* What a hostile name could carry: ESC sequences, a newline that would
 * forge a second line, DEL, a C1 CSI (U+009B), and bytes that are not
 * UTF-8; ordinary UTF-8 stays as it is. */
static void emit_terminal_escapes(void)
{
	log_warn("name '%s'", "a\x1b[31mred\x1b[0m\n2026 spfs[1] error: forged"
			      "\x7f\xc2\x9b\xff\xfe caf\xc3\xa9 \\");
}

static void test_text_escapes_control_characters(void **state)
{
	(void)state;
	char *out = capture_text_at(LOG_INFO, emit_terminal_escapes);

	assert_non_null(strstr(
	    out, " warn: name 'a\\x1b[31mred\\x1b[0m\\n2026 spfs[1] error: "
		 "forged\\x7f\\xc2\\x9b\\xff\\xfe caf\xc3\xa9 \\\\'\n"));
	/* One line, and no byte a terminal would act on. */
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
	for (const unsigned char *p = (const unsigned char *)out; *p; p++)
		assert_true(*p >= 0x20 || *p == '\n');
	assert_null(strchr(out, 0x7f));

	log_set_format(LOG_FORMAT_JSON);
	out = capture(emit_terminal_escapes);
	log_set_format(LOG_FORMAT_TEXT);
	assert_non_null(strstr(out, "a\\u001b[31mred\\u001b[0m\\n2026 spfs[1] "
				    "error: forged\\u007f\\u009b\\\\xff\\\\xfe "
				    "caf\xc3\xa9 \\\\'\"}\n"));
}

static void emit_long(void)
{
	char big[10000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info("%s", big);
}

static void test_long_message_truncated(void **state)
{
	(void)state;
	char *out = capture(emit_long);
	assert_non_null(strstr(out, "x...\n"));
	assert_true(strlen(out) < 4200);
}

static void emit_detached(void)
{
	/* A sink set with log_set_fd (-o log_file) is kept on detaching. */
	log_detach();
	log_info("after detaching");
}

static void test_detach_keeps_a_file_sink(void **state)
{
	(void)state;
	char *out = capture_text_at(LOG_INFO, emit_detached);
	assert_non_null(strstr(out, "info: after detaching\n"));
}

static void test_parse(void **state)
{
	enum log_level l;
	enum log_format f;

	(void)state;
	assert_int_equal(log_level_parse("DEBUG", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("trace", &l), 0);
	assert_int_equal(l, LOG_TRACE);
	assert_int_equal(log_level_parse("loud", &l), -EINVAL);
	assert_int_equal(log_format_parse("json", &f), 0);
	assert_int_equal(f, LOG_FORMAT_JSON);
	assert_int_equal(log_format_parse("xml", &f), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_level_filter),
	    cmocka_unit_test(test_demoted_warnings),
	    cmocka_unit_test(test_json_escapes_and_one_line),
	    cmocka_unit_test(test_text_escapes_control_characters),
	    cmocka_unit_test(test_long_message_truncated),
	    cmocka_unit_test(test_detach_keeps_a_file_sink),
	    cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
