/* SPDX-License-Identifier: MIT */
/*
 * Number formats. A workbook stores a date as a serial day number; only its
 * cell's number format says it is one. Classification reads the first
 * section of a format code the way Excel's formatter does: quoted text,
 * backslash escapes, the character after '_' (padding) and '*' (fill) and
 * bracketed colours, conditions and locales are literals; y, d, h, s, AM/PM
 * and m (minutes after an hour or before seconds, else a month) are date
 * and time tokens; [h], [m] and [s] make an elapsed duration. Rendering
 * counts whole milliseconds, so 0.99999999 of a day is the next midnight,
 * as in Excel's display.
 */
#include "config.h"

#include "sheets/numfmt.h"

#include <ctype.h>
#include <strings.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum numfmt_kind numfmt_builtin_kind(unsigned id)
{
	switch (id) {
	case 14:
	case 15:
	case 16:
	case 17:
	case 27:
	case 28:
	case 29:
	case 30:
	case 31:
	case 36:
	case 50:
	case 51:
	case 54:
	case 57:
	case 58:
		return NUMFMT_DATE;
	case 18:
	case 19:
	case 20:
	case 21:
	case 45:
	case 47:
	case 32:
	case 33:
	case 34:
	case 35:
	case 52:
	case 53:
	case 55:
	case 56:
		return NUMFMT_TIME;
	case 22:
		return NUMFMT_DATETIME;
	case 46:
		return NUMFMT_DURATION;
	default:
		return NUMFMT_NUMBER;
	}
}

static bool elapsed_token(const char *s, size_t n)
{
	if (n == 0)
		return false;
	char c = (char)tolower((unsigned char)s[0]);
	if (c != 'h' && c != 'm' && c != 's')
		return false;
	for (size_t i = 1; i < n; i++)
		if (tolower((unsigned char)s[i]) != c)
			return false;
	return true;
}

static bool starts_with_ci(const char *s, size_t n, const char *word)
{
	size_t k = strlen(word);

	return n >= k && strncasecmp(s, word, k) == 0;
}

enum numfmt_kind numfmt_code_kind(const char *code, size_t len)
{
	/* Date/time letters in order, lower-cased, one per run ("mm" -> m). */
	char tokens[64];
	size_t ntok = 0;
	bool date = false, time = false;

	for (size_t i = 0; i < len; i++) {
		char c = code[i];
		if (c == ';')
			break; /* only the first (positive numbers) section */
		if (c == '"') {
			while (i + 1 < len && code[i + 1] != '"')
				i++;
			i++;
			continue;
		}
		if (c == '\\' || c == '_' || c == '*') {
			i++;
			continue;
		}
		if (c == '[') {
			size_t j = i + 1;
			while (j < len && code[j] != ']')
				j++;
			if (elapsed_token(code + i + 1, j - i - 1))
				return NUMFMT_DURATION;
			i = j;
			continue;
		}
		if (starts_with_ci(code + i, len - i, "general")) {
			i += 6;
			continue;
		}
		if (starts_with_ci(code + i, len - i, "am/pm")) {
			time = true;
			i += 4;
			continue;
		}
		if (starts_with_ci(code + i, len - i, "a/p")) {
			time = true;
			i += 2;
			continue;
		}
		char l = (char)tolower((unsigned char)c);
		if (l != 'y' && l != 'd' && l != 'h' && l != 's' && l != 'm')
			continue;
		if (ntok && tokens[ntok - 1] == l && i > 0 &&
		    tolower((unsigned char)code[i - 1]) == l)
			continue; /* the same run */
		if (ntok < sizeof(tokens))
			tokens[ntok++] = l;
	}
	for (size_t i = 0; i < ntok; i++) {
		switch (tokens[i]) {
		case 'y':
		case 'd':
			date = true;
			break;
		case 'h':
		case 's':
			time = true;
			break;
		case 'm':
			/* Minutes right after an hour or right before seconds.
			 */
			if ((i > 0 && tokens[i - 1] == 'h') ||
			    (i + 1 < ntok && tokens[i + 1] == 's'))
				time = true;
			else
				date = true;
			break;
		}
	}
	if (date && time)
		return NUMFMT_DATETIME;
	return date ? NUMFMT_DATE : time ? NUMFMT_TIME : NUMFMT_NUMBER;
}

/* Civil date from days since 1970-01-01 (proleptic Gregorian). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yy + (*m <= 2));
}

#define MS_PER_DAY 86400000LL

static size_t put_time(char *out, int64_t ms_of_day)
{
	int h = (int)(ms_of_day / 3600000), mi = (int)(ms_of_day / 60000 % 60),
	    s = (int)(ms_of_day / 1000 % 60), ms = (int)(ms_of_day % 1000);
	int n = ms ? sprintf(out, "%02d:%02d:%02d.%03d", h, mi, s, ms)
		   : sprintf(out, "%02d:%02d:%02d", h, mi, s);
	return (size_t)n;
}

static size_t put_date(char *out, int64_t days, bool date1904)
{
	int y;
	unsigned m, d;

	if (!date1904 && days == 60)
		return (size_t)sprintf(out, "1900-02-29"); /* Excel's */
	if (date1904)
		civil_from_days(days - 24107, &y, &m, &d); /* from 1904-01-01 */
	else
		/* Serials before the fictitious 1900-02-29 count from
		 * 1899-12-31, the rest from 1899-12-30. */
		civil_from_days(days - (days < 60 ? 25568 : 25569), &y, &m, &d);
	return (size_t)sprintf(out, "%04d-%02u-%02u", y, m, d);
}

size_t numfmt_format(double v, enum numfmt_kind kind, bool date1904,
		     char out[NUMFMT_TEXT_MAX])
{
	/* 9999-12-31 is the last day Excel shows, in either system. */
	const double last = date1904 ? 2957003.0 : 2958465.0;

	if (!isfinite(v) || kind == NUMFMT_NUMBER)
		return 0;
	if (kind == NUMFMT_DURATION) {
		if (fabs(v) > 1e8)
			return 0;
		int64_t ms = llround(fabs(v) * (double)MS_PER_DAY);
		size_t n = 0;
		if (v < 0 && ms)
			out[n++] = '-';
		int64_t h = ms / 3600000;
		int mi = (int)(ms / 60000 % 60), s = (int)(ms / 1000 % 60),
		    r = (int)(ms % 1000);
		n += (size_t)(r ? sprintf(out + n, "%02lld:%02d:%02d.%03d",
					  (long long)h, mi, s, r)
				: sprintf(out + n, "%02lld:%02d:%02d",
					  (long long)h, mi, s));
		return n;
	}
	if (v < 0 || v >= last + 1)
		return 0;
	int64_t ms = llround(v * (double)MS_PER_DAY);
	int64_t days = ms / MS_PER_DAY, ms_of_day = ms % MS_PER_DAY;
	if (days > (int64_t)last)
		return 0;
	if (kind == NUMFMT_TIME && days == 0)
		return put_time(out, ms_of_day);
	if (kind == NUMFMT_DATE && ms_of_day == 0)
		return put_date(out, days, date1904);
	size_t n = put_date(out, days, date1904);
	out[n++] = 'T';
	return n + put_time(out + n, ms_of_day);
}
