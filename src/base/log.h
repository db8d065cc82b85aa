/* SPDX-License-Identifier: MIT */
#ifndef SPFS_BASE_LOG_H
#define SPFS_BASE_LOG_H

/*
 * Logging: one line per call, to stderr (or a file, or syslog once the
 * process has detached from its terminal, or a sink fd set for tests), as
 * text or as JSON. Lines are assembled in memory and written with one
 * write(2), so lines from different threads never interleave. Control
 * characters, bytes that are not UTF-8 and backslashes in a message are
 * escaped (\xNN in text, \u00NN in JSON), so a name from the service cannot
 * move a terminal's cursor or forge a line.
 *
 * Invariant: callers never pass token bytes, Authorization headers or file
 * content; there is deliberately no "log this buffer" helper.
 */

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
	LOG_TRACE = 4,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON = 1,
};

/* Messages above this level are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_format(enum log_format format);
/* Write lines to fd instead of stderr (tests, -o log_file). The fd is
 * borrowed. */
void log_set_fd(int fd);
/* The process is leaving its terminal (daemonizing: stderr becomes
 * /dev/null): lines that went to stderr go to syslog from now on (the
 * journal, on systemd hosts), as "spfs[PID]", facility daemon. A sink set
 * with log_set_fd stays. */
void log_detach(void);

/* Parses "error|warn|info|debug|trace"; returns 0 or -EINVAL. */
int log_level_parse(const char *name, enum log_level *out);
/* Parses "text|json"; returns 0 or -EINVAL. */
int log_format_parse(const char *name, enum log_format *out);

bool log_enabled(enum log_level level);

/* While on, this thread's warnings are written as debug lines: a loop that
 * retries a failing job warned once at the first failure, and its later
 * rounds would only repeat it. */
void log_demote_warnings(bool on);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_enabled(LOG_DEBUG))                                    \
			log_msg(LOG_DEBUG, __VA_ARGS__);                       \
	} while (0)

#endif
