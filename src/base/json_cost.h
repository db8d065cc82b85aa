/* SPDX-License-Identifier: MIT */
#ifndef SPFS_BASE_JSON_COST_H
#define SPFS_BASE_JSON_COST_H

/*
 * What parsing a JSON text into a tree will cost in memory, estimated from
 * its structure before any tree is built. A tree parser spends far more per
 * value than the text does: json-c takes about 800 bytes for every object
 * (its hash table), 150 for an array and 70 to 100 for a scalar, so 60 MiB
 * of "{}," becomes 16 GB. Every JSON text from the network is measured
 * here first and refused when the estimate is past what its caller allows.
 *
 * The estimate only counts: it does not validate (the parser does), and it
 * is an upper bound for json-c 0.16 on well-formed texts.
 */

#include <stddef.h>

/* Bytes of memory a parse of text[0..len) may take: per object or array
 * 800, per string or other scalar (keys included) 100, plus len. Saturates
 * at SIZE_MAX. */
size_t json_cost(const char *text, size_t len);

#endif
