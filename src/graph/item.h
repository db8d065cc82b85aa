/* SPDX-License-Identifier: MIT */
#ifndef SPFS_GRAPH_ITEM_H
#define SPFS_GRAPH_ITEM_H

/*
 * driveItems as plain C: what spfs needs of Graph's JSON, validated. An item
 * whose name could not be a POSIX file name ('/', NUL, "." or "..", invalid
 * UTF-8, empty or longer than 255 bytes; the drive root's name too) or whose
 * fields have the wrong types is rejected with -EINVAL and never reaches the
 * filesystem.
 *
 * Walks (children, delta) follow links only on Graph's origin, bound each
 * page's size, parse memory and item count, hold one page at a time and
 * stop past 100,000 items (-EFBIG): a service cannot make spfs send its
 * token elsewhere, grow without bound, or loop.
 */

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct graph;

struct graph_item {
	char *id;
	char *name;	 /* NULL for deleted items in delta */
	char *parent_id; /* NULL for the drive root */
	char *etag, *ctag, *quickxorhash, *web_url, *modified_by;
	char *download_url; /* pre-authenticated, when listed */
	int64_t size;
	struct timespec mtime, ctime;
	int64_t child_count;
	unsigned is_folder : 1, is_root : 1, is_package : 1, is_malware : 1,
	    deleted : 1;
};

void graph_item_release(struct graph_item *it);

/* Parses one driveItem JSON text (tests, fuzzing). 0 or -EINVAL/-ENOMEM. */
int graph_item_parse(const char *json, size_t len, struct graph_item *out);

/* Called per item; a non-zero return stops the walk and is returned. Items
 * are borrowed for the call. */
typedef int (*graph_item_fn)(void *ctx, const struct graph_item *item);
/* Called after each page's items, once its links are known to be followed
 * or final; a non-zero return stops the walk and is returned. What the
 * items of a page were given is for the caller to keep here: a later page
 * may fail the walk. */
typedef int (*graph_page_fn)(void *ctx);

/* One page of a collection (children or delta) as received. */
struct graph_page {
	char *next_link, *delta_link; /* malloc'd, NULL when absent */
	size_t items, skipped;	      /* passed to fn; invalid ones skipped */
};

/*
 * Parses one page: fn for each valid item (invalid ones are counted, logged
 * once per page and skipped), the links into *out. -EIO when the text is not
 * a JSON object with a "value" array, when its parse would take more than
 * GRAPH_JSON_COST_MAX (base/json_cost.h) or the array holds more than 5,000
 * entries; fn's non-zero return is returned. On success release *out with
 * graph_page_release. For the walks and fuzzing.
 */
int graph_page_parse(const char *json, size_t len, const char *what,
		     graph_item_fn fn, void *ctx, struct graph_page *out);
void graph_page_release(struct graph_page *p);

/* GET one item by id, or by path below the drive root ("a/b.csv"; segments
 * are percent-encoded here). 0, or -errno (-ENOENT, -EACCES, ...). */
int graph_item_get(struct graph *g, const char *drive_id, const char *item_id,
		   struct graph_item *out);
int graph_item_get_by_path(struct graph *g, const char *drive_id,
			   const char *path, struct graph_item *out);

/* The download URL of a file's current content: GET .../content with the
 * redirect not followed; *url is the Location, malloc'd, to be used byte for
 * byte and without Authorization. 0, -ENOENT, -EACCES, -EIO. */
int graph_content_location(struct graph *g, const char *drive_id,
			   const char *item_id, char **url);
/* Lists a folder's children, all pages ($top=1000), invalid items skipped
 * with a log line. 0 or -errno (-ELOOP for a nextLink loop, -EIO for a bad
 * page or a link off Graph's origin, -EFBIG past 100,000 items). */
int graph_children(struct graph *g, const char *drive_id, const char *item_id,
		   graph_item_fn fn, void *ctx);
/* The same, calling page_end after each page's items. */
int graph_children_paged(struct graph *g, const char *drive_id,
			 const char *item_id, graph_item_fn fn,
			 graph_page_fn page_end, void *ctx);

/*
 * One delta round from link (a stored deltaLink, or NULL for
 * "/drives/{id}/root/delta?token=latest"; or a resync Location): follows
 * nextLinks and calls fn for every item and page_end (may be NULL) after
 * each page, then sets *delta_link (malloc'd). -ESTALE when the token is no
 * longer valid, with *resync_url set to the Location to restart from
 * (malloc'd, may be NULL); otherwise as graph_children.
 */
int graph_delta(struct graph *g, const char *drive_id, const char *link,
		graph_item_fn fn, graph_page_fn page_end, void *ctx,
		char **delta_link, char **resync_url);

/* The drive's quota: bytes total and used. 0 or -errno. */
int graph_drive_quota(struct graph *g, const char *drive_id, uint64_t *total,
		      uint64_t *used);

/* True when name can be a POSIX file name as-is. */
int graph_name_valid(const char *name, size_t len);

/* "2024-01-02T03:04:05.678Z" -> timespec. 0 or -EINVAL. */
int graph_parse_time(const char *s, struct timespec *out);

#endif
