/* SPDX-License-Identifier: MIT */
#ifndef SPFS_HTTP_CONTENT_RANGE_H
#define SPFS_HTTP_CONTENT_RANGE_H

/*
 * Content-Range (RFC 9110 §14.4) of a 206 or 416: "bytes FIRST-LAST/TOTAL",
 * "bytes FIRST-LAST/STAR" or "bytes STAR/TOTAL" (STAR being an asterisk).
 * Strict: digits only, LAST >= FIRST, TOTAL > LAST; anything else is -EINVAL (a
 * download then retries rather than guess where bytes belong).
 */

struct http_content_range {
	long long first, last; /* -1 when the range is an asterisk */
	long long total;       /* -1 when the total is an asterisk */
};

int http_content_range_parse(const char *value, struct http_content_range *out);

#endif
