/* SPDX-License-Identifier: MIT */
/*
 * The log sink, the one piece of process-wide state in spfs. Level,
 * format, fd and the syslog switch are atomics so any thread may log
 * without a lock. A line is
 * built in a stack buffer (long messages are truncated with a marker rather
 * than allocated) and written with a single write(2).
 */
#include "config.h"

#include "base/log.h"
#include "base/syslog_sink.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static _Atomic int log_level_cur = LOG_INFO;
static _Atomic int log_format_cur = LOG_FORMAT_TEXT;
static _Atomic int log_fd_cur = STDERR_FILENO;
static _Atomic bool log_to_syslog; /* after log_detach(), lines to syslog */
static _Thread_local bool warnings_demoted;

static const char *const level_names[] = {"error", "warn", "info", "debug",
					  "trace"};

void log_set_level(enum log_level level)
{
	atomic_store(&log_level_cur, level);
}

enum log_level log_get_level(void)
{
	return atomic_load(&log_level_cur);
}

void log_set_format(enum log_format format)
{
	atomic_store(&log_format_cur, format);
}

void log_set_fd(int fd)
{
	atomic_store(&log_fd_cur, fd);
}

void log_detach(void)
{
	if (atomic_load(&log_fd_cur) != STDERR_FILENO)
		return;
	syslog_sink_open("spfs");
	atomic_store(&log_to_syslog, true);
}

bool log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_level_cur);
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int log_format_parse(const char *name, enum log_format *out)
{
	if (strcasecmp(name, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (strcasecmp(name, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return -EINVAL;
	return 0;
}

/* Appends src to dst[*len..cap) as a JSON string body (no quotes). */
static void json_escape_into(char *dst, size_t cap, size_t *len,
			     const char *src)
{
	static const char hex[] = "0123456789abcdef";

	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		char esc[7];
		size_t n = 0;

		switch (*p) {
		case '"':
			esc[n++] = '\\';
			esc[n++] = '"';
			break;
		case '\\':
			esc[n++] = '\\';
			esc[n++] = '\\';
			break;
		case '\n':
			esc[n++] = '\\';
			esc[n++] = 'n';
			break;
		case '\r':
			esc[n++] = '\\';
			esc[n++] = 'r';
			break;
		case '\t':
			esc[n++] = '\\';
			esc[n++] = 't';
			break;
		default:
			if (*p < 0x20) {
				esc[n++] = '\\';
				esc[n++] = 'u';
				esc[n++] = '0';
				esc[n++] = '0';
				esc[n++] = hex[*p >> 4];
				esc[n++] = hex[*p & 15];
			} else {
				esc[n++] = (char)*p;
			}
		}
		if (*len + n >= cap)
			return;
		memcpy(dst + *len, esc, n);
		*len += n;
	}
}

static size_t format_time(char *dst, size_t cap)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(dst, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	int m = snprintf(dst + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return m > 0 ? n + (size_t)m : n;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];
	char line[LOG_LINE_MAX * 2];
	char when[40];
	size_t len = 0;

	if (level == LOG_WARN && warnings_demoted)
		level = LOG_DEBUG;
	if (!log_enabled(level))
		return;

	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		memcpy(msg + sizeof(msg) - 5, "...", 4);
	/* A message must stay one line, whatever it quotes. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	if (atomic_load(&log_to_syslog)) {
		/* syslog stamps time, name and pid itself. */
		if (atomic_load(&log_format_cur) == LOG_FORMAT_JSON) {
			n = snprintf(line, sizeof(line),
				     "{\"level\":\"%s\",\"msg\":\"",
				     level_names[level]);
			len = (size_t)n;
			json_escape_into(line, sizeof(line) - 3, &len, msg);
			memcpy(line + len, "\"}", 3);
			syslog_sink_write((int)level, line);
		} else {
			syslog_sink_write((int)level, msg);
		}
		return;
	}
	format_time(when, sizeof(when));
	if (atomic_load(&log_format_cur) == LOG_FORMAT_JSON) {
		n = snprintf(line, sizeof(line),
			     "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"",
			     when, level_names[level]);
		len = (size_t)n;
		json_escape_into(line, sizeof(line) - 3, &len, msg);
		memcpy(line + len, "\"}\n", 3);
		len += 3;
	} else {
		n = snprintf(line, sizeof(line), "%s spfs[%d] %s: %s\n", when,
			     (int)getpid(), level_names[level], msg);
		len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
		line[len - 1] = '\n';
	}

	int fd = atomic_load(&log_fd_cur);
	const char *p = line;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		len -= (size_t)w;
	}
}

void log_demote_warnings(bool on)
{
	warnings_demoted = on;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
