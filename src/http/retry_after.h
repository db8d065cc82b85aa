/* SPDX-License-Identifier: MIT */
#ifndef SPFS_HTTP_RETRY_AFTER_H
#define SPFS_HTTP_RETRY_AFTER_H

/*
 * Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date. SharePoint
 * sends seconds; proxies and other services may send a date.
 */

#include <time.h>

/* Seconds to wait from now (0 for a date in the past). -EINVAL when the
 * value is neither form; absurd values are capped at one hour. */
int http_retry_after_parse(const char *value, time_t now, double *seconds);

#endif
