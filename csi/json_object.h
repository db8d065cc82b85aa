/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_JSON_OBJECT_H
#define SPFS_CSI_JSON_OBJECT_H

/*
 * Exactly one JSON object from bytes that came over a socket or from the
 * kubelet: at most max bytes, no NUL byte, nesting at most depth, only
 * whitespace after it. json-c does the parsing.
 */

#include <stddef.h>

struct json_object;

/* The object (json_object_put() it), or NULL when the bytes are anything
 * else. */
struct json_object *csi_json_object_parse(const char *data, size_t len,
					  size_t max, int depth);

#endif
