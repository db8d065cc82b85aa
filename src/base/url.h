/* SPDX-License-Identifier: MIT */
#ifndef SPFS_BASE_URL_H
#define SPFS_BASE_URL_H

/*
 * URL helpers: form encoding, path-segment encoding, joining with exactly one
 * slash, and a small parser for http(s) URLs. Pure string work, no network.
 * The one encoding rule: keep A-Z a-z 0-9 - . _ ~ and percent-encode every
 * other byte, which is always safe for both form values and path segments.
 */

#include <stddef.h>

#include "base/buf.h"

/* Appends s percent-encoded. 0, -EFBIG or -ENOMEM. */
int url_form_encode(struct buf *out, const char *s);
/* Appends "key=value" (preceded by '&' unless out is empty), both encoded. */
int url_form_add(struct buf *out, const char *key, const char *value);
/* Appends one path segment of len bytes, percent-encoded ('/' too). */
int url_path_segment_encode(struct buf *out, const char *segment, size_t len);

/* Joins base and parts with exactly one '/' between each: trailing slashes
 * of base and leading/trailing slashes of each part are dropped, a part that
 * is empty (or only slashes) is skipped, slashes inside a part are kept. No
 * encoding is applied. Returns a malloc'd string (free()), NULL when out of
 * memory or over 64 KiB. */
char *url_join(const char *base, const char *const *parts, size_t nparts);

/* Decodes %XX escapes of s[0..len) ('+' stays '+': this is not form
 * decoding). -EINVAL for a malformed escape or a NUL (decoded or literal).
 * *out is malloc'd on success and NULL on failure. */
int url_percent_decode(const char *s, size_t len, char **out);

struct url_parts {
	char *scheme; /* lower case: "http" or "https" */
	char *host;   /* without brackets for IPv6 */
	int port;     /* 0 when absent */
	char *path;   /* "/" when absent */
	char *query;  /* without '?', NULL when absent */
};

/* Parses an absolute http(s) URL into *out (the caller releases it with
 * url_parts_release(); on failure *out is left zeroed). -EINVAL for any other
 * scheme, userinfo ("user:pass@"), whitespace, control or non-ASCII bytes,
 * an empty or odd host, a port that is empty, 0, over 65535 or has a leading
 * zero; -ENOMEM. The fragment is dropped. */
int url_parse(const char *url, struct url_parts *out);
/* Frees the members and zeroes *p; safe on a zeroed or released struct. */
void url_parts_release(struct url_parts *p);

/* "https://graph.microsoft.com/v1.0" -> "https://graph.microsoft.com/.default"
 * (the client-credentials scope). The port is kept unless it is the scheme's
 * default. Returns a malloc'd string, NULL on a malformed URL or no memory. */
char *url_scope_for_resource(const char *graph_url);
/* "https://graph.microsoft.com/v1.0" -> "https://graph.microsoft.com"
 * (the IMDS resource). NULL on a malformed URL or no memory. */
char *url_resource_for(const char *graph_url);

#endif
