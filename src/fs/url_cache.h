/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_URL_CACHE_H
#define SPFS_FS_URL_CACHE_H

/*
 * Pre-authenticated download URLs seen in listing and delta pages, by item
 * id, so the first fetch of a file needs no Graph call. Bounded: past
 * URL_CACHE_MAX entries a note is dropped (the fetch then asks Graph).
 * URLs are secrets of a kind (they grant the file): never logged.
 * Threads: any; one mutex inside.
 */

#include <stddef.h>

#define URL_CACHE_MAX 65536

struct url_cache;

struct url_cache *url_cache_new(void);
void url_cache_free(struct url_cache *u);

/* Remembers url (copied) for item_id, replacing an older one. */
void url_cache_note(struct url_cache *u, const char *item_id, const char *url);
/* A malloc'd copy of item_id's URL if one was noted less than max_age
 * seconds ago (*noted_at: when, monotonic seconds), else NULL. */
char *url_cache_get(struct url_cache *u, const char *item_id, double max_age,
		    double *noted_at);
void url_cache_drop(struct url_cache *u, const char *item_id);

#endif
