/* SPDX-License-Identifier: MIT */
#ifndef SPFS_SHEETS_NUMFMT_H
#define SPFS_SHEETS_NUMFMT_H

/*
 * Number formats: whether a cell's number is a date, a time, both, or an
 * elapsed duration, judged from its format (built-in id or format code),
 * and the ISO 8601 text of such a value in the 1900 or 1904 date system.
 */

#include <stdbool.h>
#include <stddef.h>

enum numfmt_kind {
	NUMFMT_NUMBER = 0,
	NUMFMT_DATE,	 /* y, d or a month */
	NUMFMT_TIME,	 /* h, s, minutes or AM/PM, no date part */
	NUMFMT_DATETIME, /* both */
	NUMFMT_DURATION, /* [h], [m] or [s]: elapsed time */
};

/* The kind of a built-in format id (ECMA-376 18.8.30, with the East Asian
 * ids 27-36 and 50-58 as Excel shows them in those locales). */
enum numfmt_kind numfmt_builtin_kind(unsigned id);

/* The kind of a format code such as "yyyy-mm-dd hh:mm" or
 * "[Red]#,##0.00": its first section, ignoring quoted text, escaped and
 * padding characters and bracketed colours, conditions and locales. */
enum numfmt_kind numfmt_code_kind(const char *code, size_t len);

/* Enough for "-2562047788015:59:59.999" and any date text. */
#define NUMFMT_TEXT_MAX 40

/* The value as ISO 8601 text for its kind: "YYYY-MM-DD" (a date format and
 * a whole number), "YYYY-MM-DDTHH:MM:SS" (date and time, or a date format
 * with a time of day), "HH:MM:SS" (a time format and 0 <= v < 1), elapsed
 * "H:MM:SS" (hours unbounded, "-" when negative); ".mmm" follows the
 * seconds when the value has milliseconds. Serial 60 of the 1900 system is
 * Excel's 1900-02-29. Returns the length, or 0 when the value has no date
 * (negative, or after 9999-12-31): the caller writes it as a number. */
size_t numfmt_format(double v, enum numfmt_kind kind, bool date1904,
		     char out[NUMFMT_TEXT_MAX]);

#endif
