/* SPDX-License-Identifier: MIT */
#ifndef SPFS_GRAPH_JSON_H
#define SPFS_GRAPH_JSON_H

/*
 * Parsing Graph's JSON answers, for the files of src/graph only (json-c
 * objects never leave this folder). One rule for every answer: strict JSON
 * (no comments or single quotes, which json-c otherwise takes), nothing but
 * whitespace after the value, and no parse whose memory would pass
 * GRAPH_JSON_COST_MAX (base/json_cost.h).
 */

#include <stddef.h>

struct json_object;

/* The JSON object in data[0..len), or NULL (not one, malformed, or too
 * costly). The caller puts the reference. */
struct json_object *graph_json_object(const char *data, size_t len);

#endif
