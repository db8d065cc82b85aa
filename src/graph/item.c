/* SPDX-License-Identifier: MIT */
/*
 * driveItem JSON -> struct graph_item, and the paged walks (children, delta).
 * json-c objects never leave this file.
 *
 * Nothing a page says is trusted:
 *  - a body is at most GRAPH_MAX_BODY, and its parse at most
 *    GRAPH_JSON_COST_MAX of memory (estimated before parsing), with at most
 *    PAGE_ITEMS_MAX items: far above what Graph sends ($top is 1,000);
 *  - a walk holds one page at a time (a page slot, graph.h) and hands each
 *    page's items to the caller before the next, so a listing's memory does
 *    not grow with its length; it stops after WALK_ITEMS_MAX items;
 *  - links are followed only on the Graph origin (the token goes with
 *    them); a nextLink seen before ends the walk with -ELOOP, and a walk has
 *    a page budget and a budget of consecutive empty pages;
 *  - every name is validated, the drive root's included, and a child that
 *    claims to be the drive root is skipped.
 */
#include "config.h"

#include "graph/item.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json_cost.h"
#include "base/log.h"
#include "base/url.h"
#include "graph/graph.h"
#include "graph/json.h"

#define PAGE_BUDGET  100000
#define RECENT_LINKS 8
/* Graph pages hold at most 1,000 items ($top); five times that is no
 * service we know. */
#define PAGE_ITEMS_MAX 5000
/* A listing or a delta round beyond this many items is refused: memory is
 * bounded by the page, but the store and the time are not. */
#define WALK_ITEMS_MAX 100000
/* Real services send an empty page now and then, not hundreds in a row. */
#define EMPTY_PAGE_BUDGET 200
#define SELECT                                                                 \
	"id,name,size,eTag,cTag,file,folder,package,root,deleted,malware,"     \
	"fileSystemInfo,lastModifiedDateTime,createdDateTime,parentReference," \
	"webUrl,lastModifiedBy,@microsoft.graph.downloadUrl"

void graph_item_release(struct graph_item *it)
{
	char **s[] = {&it->id,	    &it->name,	      &it->parent_id,
		      &it->etag,    &it->ctag,	      &it->quickxorhash,
		      &it->web_url, &it->modified_by, &it->download_url};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		free(*s[i]);
	memset(it, 0, sizeof(*it));
}

int graph_parse_time(const char *s, struct timespec *out)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;
	long nsec = 0;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi,
			 &sec, &n) != 6)
		return -EINVAL;
	const char *p = s + n;
	if (*p == '.') {
		long scale = 100000000;
		for (p++; *p >= '0' && *p <= '9'; p++) {
			nsec += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	out->tv_sec = timegm(&tm);
	out->tv_nsec = nsec;
	return 0;
}

/* Well-formed UTF-8, no overlongs or surrogates. */
static int utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t len = c < 0x80	      ? 1
			     : (c >> 5) == 6  ? 2
			     : (c >> 4) == 14 ? 3
			     : (c >> 3) == 30 ? 4
					      : 0;
		if (!len || i + len > n)
			return 0;
		unsigned cp = len == 1 ? c : c & (0x7f >> len);
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

int graph_name_valid(const char *name, size_t len)
{
	return len > 0 && len <= 255 && !memchr(name, '/', len) &&
	       !memchr(name, '\0', len) && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0 &&
	       utf8_valid((const unsigned char *)name, len);
}

static struct json_object *member(struct json_object *o, const char *key,
				  json_type type)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, type))
		return NULL;
	return v;
}

/* Copies an optional string member; -EINVAL if present with another type. */
static int copy_str(struct json_object *o, const char *key, char **out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	const char *s = json_object_get_string(v);
	/* "\u0000" decodes to an embedded NUL: refuse rather than truncate. */
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return -EINVAL;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int item_from_json(struct json_object *o, struct graph_item *it)
{
	struct json_object *v, *f;
	int err = -EINVAL;

	memset(it, 0, sizeof(*it));
	if (!json_object_is_type(o, json_type_object))
		return -EINVAL;
	if (copy_str(o, "id", &it->id) || !it->id || !*it->id)
		goto out;
	it->deleted = member(o, "deleted", json_type_object) != NULL;
	it->is_root = member(o, "root", json_type_object) != NULL;
	struct json_object *parent =
	    member(o, "parentReference", json_type_object);
	if (parent && copy_str(parent, "id", &it->parent_id))
		goto out;
	if (copy_str(o, "name", &it->name))
		goto out;
	if (it->deleted) {
		err = 0;
		goto out;
	}
	/* The root's name too: a "root" facet is no pass for "a/b". */
	if (!it->name || !graph_name_valid(it->name, strlen(it->name)))
		goto out;
	if ((v = member(o, "size", json_type_int))) {
		it->size = json_object_get_int64(v);
		/* json-c keeps 2^63..2^64-1 as unsigned and clamps them to
		 * INT64_MAX here: no real size, so refused, not clamped. */
		if (it->size < 0 ||
		    (it->size == INT64_MAX &&
		     json_object_get_uint64(v) != (uint64_t)INT64_MAX))
			goto out;
	} else if (json_object_object_get_ex(o, "size", &v)) {
		goto out;
	}
	f = member(o, "folder", json_type_object);
	it->is_folder = f != NULL || it->is_root;
	if (f && (v = member(f, "childCount", json_type_int)))
		it->child_count = json_object_get_int64(v);
	it->is_package = member(o, "package", json_type_object) != NULL;
	it->is_malware = member(o, "malware", json_type_object) != NULL;
	if (copy_str(o, "eTag", &it->etag) || copy_str(o, "cTag", &it->ctag) ||
	    copy_str(o, "webUrl", &it->web_url) ||
	    copy_str(o, "@microsoft.graph.downloadUrl", &it->download_url))
		goto out;
	struct json_object *file = member(o, "file", json_type_object);
	struct json_object *hashes = member(file, "hashes", json_type_object);
	if (hashes && copy_str(hashes, "quickXorHash", &it->quickxorhash))
		goto out;
	struct json_object *user =
	    member(member(o, "lastModifiedBy", json_type_object), "user",
		   json_type_object);
	if (user && copy_str(user, "displayName", &it->modified_by))
		goto out;

	/* Client-set times first (what the user saw on their disk). */
	struct json_object *fsi = member(o, "fileSystemInfo", json_type_object);
	struct json_object *m =
	    member(fsi, "lastModifiedDateTime", json_type_string);
	if (!m)
		m = member(o, "lastModifiedDateTime", json_type_string);
	struct json_object *c =
	    member(fsi, "createdDateTime", json_type_string);
	if (!c)
		c = member(o, "createdDateTime", json_type_string);
	if (m && graph_parse_time(json_object_get_string(m), &it->mtime))
		goto out;
	if (c && graph_parse_time(json_object_get_string(c), &it->ctime))
		goto out;
	if (!c)
		it->ctime = it->mtime;
	err = 0;
out:
	if (err)
		graph_item_release(it);
	return err;
}

struct json_object *graph_json_object(const char *data, size_t len)
{
	struct json_tokener *tok;
	struct json_object *obj = NULL;

	if (!data || len > INT32_MAX ||
	    json_cost(data, len) > GRAPH_JSON_COST_MAX ||
	    !(tok = json_tokener_new()))
		return NULL;
	/* Strict JSON, which json_cost() counts right: json-c's lenient mode
	 * takes comments and single-quoted strings, which could hide
	 * containers from the estimate. Graph sends strict JSON. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, data, (int)len);
	if (obj && (json_tokener_get_error(tok) != json_tokener_success ||
		    !json_object_is_type(obj, json_type_object))) {
		json_object_put(obj);
		obj = NULL;
	}
	/* Bytes after the object: a body spliced or corrupted on the way. */
	for (size_t i = obj ? json_tokener_get_parse_end(tok) : len; i < len;
	     i++) {
		if (!memchr(" \t\r\n", data[i], 4)) {
			json_object_put(obj);
			obj = NULL;
			break;
		}
	}
	json_tokener_free(tok);
	return obj;
}

int graph_item_parse(const char *json, size_t len, struct graph_item *out)
{
	struct json_object *o = graph_json_object(json, len);
	int err = o ? item_from_json(o, out) : -EINVAL;

	json_object_put(o);
	return err;
}

static int get_item(struct graph *g, const char *path, const char *what,
		    struct graph_item *out)
{
	struct http_response resp;
	int err;

	http_response_init(&resp);
	err = graph_get(g, path, &resp);
	if (!err && resp.status != 200)
		err = resp.status == 404 ? -ENOENT : graph_fail(what, &resp);
	if (!err) {
		struct json_object *o =
		    graph_json_object(resp.body.data, resp.body.len);
		err = o ? item_from_json(o, out) : -EIO;
		if (err)
			log_warn("%s: malformed driveItem in the answer", what);
		json_object_put(o);
	}
	http_response_release(&resp);
	return err;
}

/* Appends "/drives/{drive}" and, when item_id is given, "/items/{item}",
 * each percent-encoded: the start of every drive path we request. */
static int drive_path(struct buf *path, const char *drive_id,
		      const char *item_id)
{
	int err = buf_append_str(path, "/drives/");

	err = err ? err
		  : url_path_segment_encode(path, drive_id, strlen(drive_id));
	if (!err && item_id) {
		err = buf_append_str(path, "/items/");
		err = err ? err
			  : url_path_segment_encode(path, item_id,
						    strlen(item_id));
	}
	return err;
}

int graph_item_get(struct graph *g, const char *drive_id, const char *item_id,
		   struct graph_item *out)
{
	struct buf path;
	int err;

	buf_init(&path, 4096);
	err = drive_path(&path, drive_id, item_id);
	err = err ? err : get_item(g, path.data, "get item", out);
	buf_release(&path);
	return err;
}

int graph_content_location(struct graph *g, const char *drive_id,
			   const char *item_id, char **url)
{
	struct http_response resp;
	struct buf path;
	int err;

	*url = NULL;
	buf_init(&path, 4096);
	http_response_init(&resp);
	err = drive_path(&path, drive_id, item_id);
	err = err ? err : buf_append_str(&path, "/content");
	err = err ? err : graph_get(g, path.data, &resp);
	if (err)
		goto out;
	if (resp.status >= 300 && resp.status < 400 && resp.location &&
	    (strncmp(resp.location, "https://", 8) == 0 ||
	     strncmp(resp.location, "http://", 7) == 0)) {
		*url = strdup(resp.location);
		err = *url ? 0 : -ENOMEM;
	} else if (resp.status == 404) {
		err = -ENOENT;
	} else if (resp.status < 300) {
		log_warn(
		    "file content: HTTP %ld without a redirect (request-id "
		    "%s)",
		    resp.status, resp.request_id ? resp.request_id : "-");
		err = -EIO;
	} else {
		err = graph_fail("file content", &resp);
	}
out:
	http_response_release(&resp);
	buf_release(&path);
	return err;
}

int graph_item_get_by_path(struct graph *g, const char *drive_id,
			   const char *rel, struct graph_item *out)
{
	struct buf path;
	int err;

	buf_init(&path, 16384);
	err = drive_path(&path, drive_id, NULL);
	err = err ? err : buf_append_str(&path, "/root");
	const char *p = rel;
	while (*p == '/')
		p++;
	if (!err && *p) {
		err = buf_append_str(&path, ":");
		while (!err && *p) {
			size_t n = strcspn(p, "/");
			if (n) {
				err = buf_append_str(&path, "/");
				err =
				    err ? err
					: url_path_segment_encode(&path, p, n);
			}
			p += n;
			while (*p == '/')
				p++;
		}
		err = err ? err : buf_append_str(&path, ":");
	}
	err = err ? err : get_item(g, path.data, "get item by path", out);
	buf_release(&path);
	return err;
}

/* A link is followed byte for byte: one with a NUL in it is refused
 * rather than cut short. */
static int copy_link(const char *what, struct json_object *v, char **out)
{
	const char *s = json_object_get_string(v);

	if (strlen(s) != (size_t)json_object_get_string_len(v)) {
		log_warn("%s: a page link with a NUL byte", what);
		return -EIO;
	}
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

int graph_page_parse(const char *json, size_t len, const char *what,
		     graph_item_fn fn, void *ctx, struct graph_page *out)
{
	struct json_object *o, *value;
	int err = 0;

	memset(out, 0, sizeof(*out));
	o = graph_json_object(json, len);
	value = member(o, "value", json_type_array);
	if (!value) {
		log_warn("%s: malformed page (no JSON value array, or one "
			 "beyond any real page), %zu bytes",
			 what, len);
		err = -EIO;
		goto out;
	}
	size_t n = json_object_array_length(value);
	if (n > PAGE_ITEMS_MAX) {
		log_warn("%s: a page of %zu items (Graph sends at most "
			 "1,000); refusing it",
			 what, n);
		err = -EIO;
		goto out;
	}
	for (size_t i = 0; i < n && !err; i++) {
		struct graph_item it;
		int perr =
		    item_from_json(json_object_array_get_idx(value, i), &it);
		if (perr == -EINVAL) {
			out->skipped++;
			continue;
		}
		if (perr) {
			err = perr;
			break;
		}
		out->items++;
		err = fn(ctx, &it);
		graph_item_release(&it);
	}
	if (out->skipped)
		log_warn("%s: skipped %zu item(s) with invalid fields or names",
			 what, out->skipped);
	struct json_object *next =
	    member(o, "@odata.nextLink", json_type_string);
	struct json_object *delta =
	    member(o, "@odata.deltaLink", json_type_string);
	if (!err && next)
		err = copy_link(what, next, &out->next_link);
	if (!err && delta)
		err = copy_link(what, delta, &out->delta_link);
out:
	json_object_put(o);
	if (err)
		graph_page_release(out);
	return err;
}

void graph_page_release(struct graph_page *p)
{
	free(p->next_link);
	free(p->delta_link);
	p->next_link = p->delta_link = NULL;
}

/* What a walk does with what it finds. */
struct walk_ctx {
	struct graph *g;
	const char *what;
	graph_item_fn fn;
	graph_page_fn page_end; /* NULL: none */
	void *ctx;
	bool children; /* a folder's children: none of them is the root */
	size_t items;  /* so far, skipped ones included */
};

/* Per item: the listing's bound, and no child claiming to be the root. */
static int walk_item(void *ctx, const struct graph_item *it)
{
	struct walk_ctx *w = ctx;

	if (++w->items > WALK_ITEMS_MAX) {
		log_warn("%s: more than %d items; giving up (spfs lists at "
			 "most that many)",
			 w->what, WALK_ITEMS_MAX);
		return -EFBIG;
	}
	if (w->children && it->is_root) {
		log_warn("%s: skipped '%s', a child marked as the drive root",
			 w->what, it->name ? it->name : "");
		return 0;
	}
	return w->fn(w->ctx, it);
}

/* A link the walk may follow: on the Graph origin, which alone gets the
 * token. Said once, with the origin but not the rest of the link. */
static int link_allowed(struct walk_ctx *w, const char *kind, const char *url)
{
	if (graph_link_ours(w->g, url))
		return 0;
	char *o = http_url_origin(url);
	log_warn("%s: the service sent a %s to another origin (%s); only %s "
		 "gets the access token, so the walk stops here",
		 w->what, kind, o ? o : "a URL that does not parse",
		 graph_origin(w->g));
	free(o);
	return -EIO;
}

/* Fetches and parses one page of url into *p, holding a page slot while
 * its body and tree exist. 410 with resync_url: -ESTALE. */
static int walk_page(struct walk_ctx *w, const char *url, struct graph_page *p,
		     char **resync_url)
{
	struct http_response resp;
	int err;

	graph_page_slot_take(w->g);
	http_response_init(&resp);
	err = graph_get(w->g, url, &resp);
	if (!err && resp.status == 410 && resync_url) {
		*resync_url = resp.location ? strdup(resp.location) : NULL;
		err = -ESTALE;
	} else if (!err && resp.status != 200) {
		err = graph_fail(w->what, &resp);
	} else if (!err) {
		err = graph_page_parse(resp.body.data, resp.body.len, w->what,
				       walk_item, w, p);
	} else if (err == -EFBIG) {
		log_warn("%s: a page larger than %u bytes; refusing it",
			 w->what, GRAPH_MAX_BODY);
		err = -EIO;
	}
	http_response_release(&resp);
	graph_page_slot_give(w->g);
	return err;
}

/* Walks pages from first_url. For delta, *final_link receives the
 * deltaLink; on 410, *resync_url the Location. */
static int walk(struct walk_ctx *w, const char *first_url, char **final_link,
		char **resync_url)
{
	char *recent[RECENT_LINKS] = {0};
	char *url = strdup(first_url);
	const char *what = w->what;
	int empty_run = 0;
	int err = 0;

	/* The first link counts as seen: a page linking to itself stops at
	 * the second request. */
	recent[RECENT_LINKS - 1] = strdup(first_url);
	if (!url || !recent[RECENT_LINKS - 1]) {
		free(url);
		free(recent[RECENT_LINKS - 1]);
		return -ENOMEM;
	}
	for (int page = 0; url; page++) {
		struct graph_page p;

		if (page >= PAGE_BUDGET) {
			log_warn("%s: more than %d pages; giving up", what,
				 PAGE_BUDGET);
			err = -ELOOP;
			break;
		}
		err = walk_page(w, url, &p, resync_url);
		if (err)
			break;
		free(url);
		url = p.next_link;
		p.next_link = NULL;
		if (!url && p.delta_link && final_link) {
			err = link_allowed(w, "deltaLink", p.delta_link);
			*final_link = err ? NULL : p.delta_link;
			p.delta_link = err ? p.delta_link : NULL;
		}
		graph_page_release(&p);
		if (!err && url)
			err = link_allowed(w, "nextLink", url);
		if (!err && w->page_end)
			err = w->page_end(w->ctx);
		if (err)
			break;
		/* Pages that keep coming with nothing in them: a service stuck
		 * handing out fresh links (each new, so not caught below). */
		empty_run = p.items || p.skipped ? 0 : empty_run + 1;
		if (url && empty_run >= EMPTY_PAGE_BUDGET) {
			log_warn("%s: %d pages in a row without an item; "
				 "giving up",
				 what, empty_run);
			err = -ELOOP;
			break;
		}
		if (url) {
			for (int k = 0; k < RECENT_LINKS; k++) {
				if (recent[k] && strcmp(recent[k], url) == 0) {
					log_warn("%s: the service repeated a "
						 "nextLink; stopping",
						 what);
					err = -ELOOP;
				}
			}
			if (err)
				break;
			free(recent[page % RECENT_LINKS]);
			recent[page % RECENT_LINKS] = strdup(url);
		} else if (final_link && !*final_link) {
			log_warn("%s: last page without a deltaLink", what);
			err = -EIO;
		}
	}
	free(url);
	for (int k = 0; k < RECENT_LINKS; k++)
		free(recent[k]);
	return err;
}

int graph_children_paged(struct graph *g, const char *drive_id,
			 const char *item_id, graph_item_fn fn,
			 graph_page_fn page_end, void *ctx)
{
	struct walk_ctx w = {.g = g,
			     .what = "list folder",
			     .fn = fn,
			     .page_end = page_end,
			     .ctx = ctx,
			     .children = true};
	struct buf path;
	int err;

	buf_init(&path, 4096);
	err = drive_path(&path, drive_id, item_id);
	err =
	    err ? err
		: buf_append_str(&path, "/children?$top=1000&$select=" SELECT);
	err = err ? err : walk(&w, path.data, NULL, NULL);
	buf_release(&path);
	return err;
}

int graph_children(struct graph *g, const char *drive_id, const char *item_id,
		   graph_item_fn fn, void *ctx)
{
	return graph_children_paged(g, drive_id, item_id, fn, NULL, ctx);
}

int graph_delta(struct graph *g, const char *drive_id, const char *link,
		graph_item_fn fn, graph_page_fn page_end, void *ctx,
		char **delta_link, char **resync_url)
{
	struct walk_ctx w = {.g = g,
			     .what = "delta",
			     .fn = fn,
			     .page_end = page_end,
			     .ctx = ctx};
	struct buf path;
	int err = 0;

	*delta_link = NULL;
	*resync_url = NULL;
	buf_init(&path, 4096);
	if (link) {
		err = buf_append_str(&path, link);
	} else {
		/* $select as for children: smaller pages, and the links
		 * keep it. */
		err = drive_path(&path, drive_id, NULL);
		err = err ? err
			  : buf_append_str(&path, "/root/delta?token=latest"
						  "&$select=" SELECT);
	}
	err = err ? err : walk(&w, path.data, delta_link, resync_url);
	if (err) {
		free(*delta_link);
		*delta_link = NULL;
	}
	buf_release(&path);
	return err;
}

int graph_drive_quota(struct graph *g, const char *drive_id, uint64_t *total,
		      uint64_t *used)
{
	struct http_response resp;
	struct buf path;
	int err;

	http_response_init(&resp);
	buf_init(&path, 4096);
	err = drive_path(&path, drive_id, NULL);
	err = err ? err : buf_append_str(&path, "?$select=id,quota");
	err = err ? err : graph_get(g, path.data, &resp);
	if (!err && resp.status != 200)
		err = graph_fail("drive quota", &resp);
	if (!err) {
		struct json_object *o =
		    graph_json_object(resp.body.data, resp.body.len);
		struct json_object *q = member(o, "quota", json_type_object);
		struct json_object *t = member(q, "total", json_type_int);
		struct json_object *u = member(q, "used", json_type_int);
		if (t && u && json_object_get_int64(t) >= 0 &&
		    json_object_get_int64(u) >= 0) {
			*total = (uint64_t)json_object_get_int64(t);
			*used = (uint64_t)json_object_get_int64(u);
		} else {
			err = -EIO;
		}
		json_object_put(o);
	}
	buf_release(&path);
	http_response_release(&resp);
	return err;
}
