/* SPDX-License-Identifier: MIT */
/*
 * The log sink, the one piece of process-wide state in spfs. Level,
 * format, fd and the syslog switch are atomics so any thread may log
 * without a lock. A line is
 * built in a stack buffer (long messages are truncated with a marker rather
 * than allocated) and written with a single write(2). Messages quote what
 * the service sends (names, error texts), so every line is escaped: no
 * control character, backslash or non-UTF-8 byte reaches the sink raw.
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

/* The length of the well-formed UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_len(const unsigned char *p)
{
	unsigned c = p[0];
	size_t len = c < 0x80	      ? 1
		     : (c >> 5) == 6  ? 2
		     : (c >> 4) == 14 ? 3
		     : (c >> 3) == 30 ? 4
				      : 0;
	unsigned cp = len == 1 ? c : c & (0x7fu >> len);

	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0; /* also stops at the terminating NUL */
		cp = cp << 6 | (p[k] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * Appends src to dst[*len..cap) so that no byte of it can act on a terminal
 * or a log reader: control characters (C0, DEL and the C1 range U+0080..
 * U+009F, which some terminals obey), backslashes and bytes that are not
 * UTF-8 are escaped; JSON also escapes quotes. Names and error texts from
 * the service reach log lines, and a name may hold ESC or a newline.
 */
static void escape_into(char *dst, size_t cap, size_t *len, const char *src,
			bool json)
{
	static const char hex[] = "0123456789abcdef";

	for (const unsigned char *p = (const unsigned char *)src; *p;) {
		char esc[16];
		size_t n = 0, used = 1;
		unsigned c = *p;
		size_t seq = utf8_len(p);
		unsigned cp = c;

		if (seq == 2)
			cp = (c & 0x1f) << 6 | (p[1] & 0x3f);
		if (c == '\\' || (json && c == '"')) {
			esc[n++] = '\\';
			esc[n++] = (char)c;
		} else if (c == '\n' || c == '\r' || c == '\t') {
			esc[n++] = '\\';
			esc[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		} else if (json &&
			   (c < 0x20 || c == 0x7f || (seq == 2 && cp < 0xa0))) {
			used = seq;
			memcpy(esc, "\\u00", 4);
			n = 4;
			esc[n++] = hex[cp >> 4 & 15];
			esc[n++] = hex[cp & 15];
		} else if (c < 0x20 || c == 0x7f || (seq == 2 && cp < 0xa0)) {
			/* A C1 control as its two UTF-8 bytes. */
			used = seq;
			for (size_t k = 0; k < used; k++) {
				esc[n++] = '\\';
				esc[n++] = 'x';
				esc[n++] = hex[p[k] >> 4];
				esc[n++] = hex[p[k] & 15];
			}
		} else if (!seq) {
			/* Not UTF-8: the byte's value, as text in both forms
			 * (JSON must stay valid UTF-8). */
			if (json)
				esc[n++] = '\\';
			esc[n++] = '\\';
			esc[n++] = 'x';
			esc[n++] = hex[c >> 4];
			esc[n++] = hex[c & 15];
		} else {
			used = seq;
			memcpy(esc, p, seq);
			n = seq;
		}
		if (*len + n >= cap)
			return;
		memcpy(dst + *len, esc, n);
		*len += n;
		p += used;
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
	char
	    line[LOG_LINE_MAX * 5 + 128]; /* escaping: at most 5 bytes a byte */
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

	/* Escaped, the message stays one line of inert text. */
	bool json = atomic_load(&log_format_cur) == LOG_FORMAT_JSON;
	if (atomic_load(&log_to_syslog)) {
		/* syslog stamps time, name and pid itself. */
		len = 0;
		if (json) {
			n = snprintf(line, sizeof(line),
				     "{\"level\":\"%s\",\"msg\":\"",
				     level_names[level]);
			len = (size_t)n;
		}
		escape_into(line, sizeof(line) - 3, &len, msg, json);
		if (json) {
			memcpy(line + len, "\"}", 3);
		} else {
			line[len] = '\0';
		}
		syslog_sink_write((int)level, line);
		return;
	}
	format_time(when, sizeof(when));
	if (json)
		n = snprintf(line, sizeof(line),
			     "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"",
			     when, level_names[level]);
	else
		n = snprintf(line, sizeof(line), "%s spfs[%d] %s: ", when,
			     (int)getpid(), level_names[level]);
	len = (size_t)n;
	escape_into(line, sizeof(line) - 3, &len, msg, json);
	if (json) {
		memcpy(line + len, "\"}\n", 3);
		len += 3;
	} else {
		line[len++] = '\n';
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
