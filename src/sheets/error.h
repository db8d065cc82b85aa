/* SPDX-License-Identifier: MIT */
#ifndef SPFS_SHEETS_ERROR_H
#define SPFS_SHEETS_ERROR_H

/*
 * Why a conversion failed, for the one log line that names the workbook:
 * the first failure wins (a later "write failed" must not hide "shared
 * string 9 of 3"). Reasons never quote cell contents; names taken from the
 * workbook (part paths) are cut short and made printable.
 */

#include <stdarg.h>
#include <stddef.h>

struct sheets_error {
	int code; /* 0, or a negative errno: -EBADMSG for a bad workbook */
	char why[192];
};

/* Records code and the reason unless a failure is already recorded;
 * returns the recorded code (so `return sheets_fail(...)` propagates). */
int sheets_fail(struct sheets_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A name from the workbook, for a reason: at most 48 bytes, every byte
 * outside printable ASCII as '?'. Returns out. */
const char *sheets_printable(const char *s, size_t n, char out[52]);

#endif
