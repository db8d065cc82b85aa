/* SPDX-License-Identifier: MIT */
#ifndef SPFS_SHEETS_XML_H
#define SPFS_SHEETS_XML_H

/*
 * One XML part of a workbook, parsed as it is inflated by libxml2's
 * streaming (SAX2 push) parser, with everything a hostile part could use
 * turned off: no DTD at all (a DOCTYPE stops the parse before its
 * declarations are read, so no entity is ever defined, let alone
 * expanded), no network, no external resources, libxml2's own bounds on
 * text, names and depth (no XML_PARSE_HUGE).
 *
 * Elements are reported by local name (transitional and strict Office Open
 * XML use different namespace URIs for the same names).
 */

#include <stddef.h>

#include "sheets/archive.h"
#include "sheets/error.h"

/* An element's attributes: libxml2's SAX2 array, 5 pointers each
 * (localname, prefix, URI, value, end). */
struct xml_attrs {
	const unsigned char **a;
	int n;
};

/* Callbacks; each returns 0 to go on or a negative errno (with the reason
 * recorded in the run's error) to stop the parse. */
struct xml_handler {
	int (*start)(void *ctx, const char *name, const struct xml_attrs *at);
	int (*end)(void *ctx, const char *name);
	int (*text)(void *ctx, const char *s, size_t n);
};

/* Parses part `name` of a: 0, -ENOENT when the part is absent (e
 * untouched), or a negative errno with e set (-EBADMSG: malformed XML, a
 * DTD, a bound passed). */
int xml_parse_part(struct archive *a, const char *name,
		   const struct xml_handler *h, void *ctx,
		   struct sheets_error *e);

/* The value of an attribute by local name, without a namespace (ns 0) or
 * with one (ns 1, e.g. r:id); NULL when absent. Not NUL-terminated. */
const char *xml_attr(const struct xml_attrs *at, const char *local, int ns,
		     size_t *len);

/* The same, as a NUL-terminated copy (malloc'd; NULL when absent or out
 * of memory, *oom set then) with '&' restored: without entity
 * substitution libxml2 hands over a literal '&' in an attribute as
 * "&#38;" (every other reference arrives decoded). For names and paths. */
char *xml_attr_dup(const struct xml_attrs *at, const char *local, int ns,
		   size_t *len, int *oom);

#endif
