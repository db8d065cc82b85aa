/* SPDX-License-Identifier: MIT */
/*
 * Shortest round-trip numbers. A workbook stores numbers as decimal text;
 * when that text has at most 15 significant digits its digits already are
 * the shortest that round-trip (two different decimals of 15 digits never
 * round to the same double), so they are normalised without any floating
 * point work. Otherwise the double is printed with 15, 16, then 17
 * significant digits ("%.*e") and the first that reads back equal wins,
 * trailing zeros dropped: if any form of 15 digits or fewer round-trips,
 * the 15-digit rounding is it, padded with zeros (for normal doubles,
 * whose 53 bits resolve 15 digits; subnormals are searched from one).
 *
 * Relies on the C locale's '.' in printf/strtod: spfs never calls
 * setlocale().
 */
#include "config.h"

#include "sheets/number.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A decimal: digits (no leading or trailing zeros) with the exponent of the
 * first digit, value = 0.d1d2... * 10^(exp10 + 1), i.e. d1.d2... * 10^exp10. */
struct decimal {
	int negative;
	char digits[24];
	int ndigits;
	int exp10;
};

static size_t layout(const struct decimal *d, char *out)
{
	char *p = out;

	if (d->ndigits == 0) {
		out[0] = '0';
		out[1] = '\0';
		return 1;
	}
	if (d->negative)
		*p++ = '-';
	if (d->exp10 >= 21 || d->exp10 <= -7) {
		*p++ = d->digits[0];
		if (d->ndigits > 1) {
			*p++ = '.';
			memcpy(p, d->digits + 1, (size_t)d->ndigits - 1);
			p += d->ndigits - 1;
		}
		p += sprintf(p, "e%c%d", d->exp10 < 0 ? '-' : '+',
			     d->exp10 < 0 ? -d->exp10 : d->exp10);
	} else if (d->exp10 < 0) {
		*p++ = '0';
		*p++ = '.';
		for (int i = 0; i < -d->exp10 - 1; i++)
			*p++ = '0';
		memcpy(p, d->digits, (size_t)d->ndigits);
		p += d->ndigits;
	} else {
		int whole = d->exp10 + 1;
		for (int i = 0; i < whole; i++)
			*p++ = i < d->ndigits ? d->digits[i] : '0';
		if (d->ndigits > whole) {
			*p++ = '.';
			memcpy(p, d->digits + whole,
			       (size_t)(d->ndigits - whole));
			p += d->ndigits - whole;
		}
	}
	*p = '\0';
	return (size_t)(p - out);
}

/* Parses "%.*e" output ("-1.2345000e+05") into a decimal. */
static void from_exponent_form(const char *s, struct decimal *d)
{
	memset(d, 0, sizeof(*d));
	if (*s == '-') {
		d->negative = 1;
		s++;
	}
	for (; *s && *s != 'e'; s++)
		if (*s != '.')
			d->digits[d->ndigits++] = *s;
	d->exp10 = atoi(s + 1);
	while (d->ndigits > 0 && d->digits[d->ndigits - 1] == '0')
		d->ndigits--;
}

size_t number_format(double x, char out[NUMBER_TEXT_MAX])
{
	char buf[40];
	struct decimal d;

	if (x == 0) {
		out[0] = '0';
		out[1] = '\0';
		return 1;
	}
	/* A subnormal has fewer significant bits: search from one digit. */
	int first = fabs(x) < 2.2250738585072014e-308 ? 1 : 15;
	for (int digits = first; digits <= 17; digits++) {
		snprintf(buf, sizeof(buf), "%.*e", digits - 1, x);
		if (digits == 17 || strtod(buf, NULL) == x)
			break;
	}
	from_exponent_form(buf, &d);
	return layout(&d, out);
}

/* Plain decimal text into a decimal, or -EINVAL; *sig: significant digits
 * seen (more than fit are counted, not kept). */
static int parse_text(const char *s, size_t n, struct decimal *d, int *sig)
{
	size_t i = 0;
	int seen_digit = 0, point = 0, lead_exp = 0;

	memset(d, 0, sizeof(*d));
	*sig = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		d->negative = s[i++] == '-';
	/* Position of the first significant digit relative to the point. */
	int int_digits = 0; /* significant digits before the point */
	int frac_zeros = 0; /* zeros after the point before the first one */
	for (; i < n; i++) {
		char c = s[i];
		if (c == '.' && !point) {
			point = 1;
			continue;
		}
		if (c < '0' || c > '9')
			break;
		seen_digit = 1;
		if (c == '0' && *sig == 0) {
			if (point)
				frac_zeros++;
			continue;
		}
		if (*sig < (int)sizeof(d->digits))
			d->digits[d->ndigits++] = c;
		(*sig)++;
		if (!point)
			int_digits++;
	}
	if (!seen_digit)
		return -EINVAL;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;
		int eneg = 0;
		long e = 0;
		if (j < n && (s[j] == '-' || s[j] == '+'))
			eneg = s[j++] == '-';
		if (j >= n)
			return -EINVAL;
		for (; j < n && s[j] >= '0' && s[j] <= '9'; j++)
			if (e < 100000)
				e = e * 10 + (s[j] - '0');
		if (j != n || (s[j - 1] < '0' || s[j - 1] > '9'))
			return -EINVAL;
		lead_exp = (int)(eneg ? -e : e);
		i = n;
	}
	if (i != n)
		return -EINVAL;
	while (d->ndigits > 0 && d->digits[d->ndigits - 1] == '0')
		d->ndigits--;
	if (*sig == 0) {
		d->ndigits = 0;
		d->negative = 0;
		return 0;
	}
	d->exp10 =
	    (int_digits > 0 ? int_digits - 1 : -frac_zeros - 1) + lead_exp;
	return 0;
}

int number_parse_format(const char *s, size_t n, double *x,
			char out[NUMBER_TEXT_MAX], size_t *len)
{
	char tmp[64];
	struct decimal d;
	int sig;

	if (parse_text(s, n, &d, &sig) != 0)
		return -EINVAL;
	/* The common case needs no floating point at all: a zero, or 15
	 * digits or fewer well inside the normal range (finite, and the
	 * digits are the shortest). */
	if (!x &&
	    (sig == 0 || (sig <= 15 && d.exp10 > -300 && d.exp10 < 300))) {
		*len = layout(&d, out);
		return 0;
	}
	double v;
	if (!x)
		x = &v;
	/* strtod needs a NUL; a longer text is still parsed exactly. */
	if (n < sizeof(tmp)) {
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		*x = strtod(tmp, NULL);
	} else {
		char *copy = strndup(s, n);
		if (!copy)
			return -ENOMEM;
		*x = strtod(copy, NULL);
		free(copy);
	}
	if (!isfinite(*x))
		return -EINVAL;
	if (*x == 0) {
		out[0] = '0';
		out[1] = '\0';
		*len = 1;
		return 0;
	}
	/* Underflow to a subnormal or 15 digits or fewer: the text's digits
	 * are the shortest; otherwise let the double decide. */
	if (sig <= 15 && fabs(*x) >= 2.2250738585072014e-308) {
		*len = layout(&d, out);
		return 0;
	}
	*len = number_format(*x, out);
	return 0;
}
