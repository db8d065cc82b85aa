/* SPDX-License-Identifier: MIT */
#ifndef SPFS_SHEETS_NUMBER_H
#define SPFS_SHEETS_NUMBER_H

/*
 * Numbers as CSV text: the shortest decimal that reads back (strtod) as the
 * same double, laid out like JavaScript's Number#toString: positional for
 * 1e-6 <= |x| < 1e21 ("0.1", "1000000", "-2.5"), else "1.5e+21", "1e-7".
 * No locale is consulted; "-0" is written "0".
 */

#include <stddef.h>

/* Enough for any double in this layout, with its NUL. */
#define NUMBER_TEXT_MAX 32

/* Writes x (finite) into out; returns the length. */
size_t number_format(double x, char out[NUMBER_TEXT_MAX]);

/* A cell's stored number, e.g. "1.5", "-3E-05", "0.10000000000000001":
 * its text in out and, unless x is NULL (then the common case costs no
 * strtod), its value in *x. -EINVAL when it is not a finite decimal
 * number (hex, inf, nan, spaces and empty text are refused). */
int number_parse_format(const char *s, size_t n, double *x,
			char out[NUMBER_TEXT_MAX], size_t *len);

#endif
