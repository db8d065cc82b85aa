/* SPDX-License-Identifier: MIT */
/*
 * SOURCE parsing and resolution. Only per-site calls: GET /sites/{host}:{path},
 * GET /sites/{id}/drives, GET /drives/{id}/root:/{folder}: -- never tenant-wide
 * search, which Sites.Selected does not allow. The one exception is a
 * sharing link that names no path (/:f:/s/..., /:f:/g/...): only Graph's
 * shares endpoint can resolve it, and when the identity may not use it, the
 * refusal says what to paste instead.
 */
#include "config.h"

#include "graph/source.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/b64.h"
#include "base/log.h"
#include "base/url.h"
#include "graph/graph.h"
#include "graph/item.h"
#include "graph/json.h"

void source_release(struct source *s)
{
	free(s->host);
	free(s->site_path);
	for (size_t i = 0; i < s->nsegments; i++)
		free(s->segments[i]);
	free(s->segments);
	free(s->drive_id);
	free(s->folder);
	free(s->share_url);
	memset(s, 0, sizeof(*s));
}

void source_resolved_release(struct source_resolved *r)
{
	free(r->site_id);
	free(r->site_web_url);
	free(r->drive_id);
	free(r->drive_name);
	free(r->drive_web_url);
	free(r->root_id);
	free(r->root_path);
	memset(r, 0, sizeof(*r));
}

static int push_segment(struct source *s, const char *seg, size_t n)
{
	char *decoded;
	int err = url_percent_decode(seg, n, &decoded);

	if (err)
		return err;
	char **grown =
	    realloc(s->segments, (s->nsegments + 1) * sizeof(char *));
	if (!grown) {
		free(decoded);
		return -ENOMEM;
	}
	s->segments = grown;
	s->segments[s->nsegments++] = decoded;
	return 0;
}

static int parse_drive(const char *text, struct source *out, struct buf *msg)
{
	const char *id = text + strlen("drive:");
	const char *colon = strstr(id, ":/");
	size_t n = colon ? (size_t)(colon - id) : strlen(id);

	if (n == 0) {
		buf_appendf(msg, "SOURCE '%.200s': no drive id after 'drive:'",
			    text);
		return -EINVAL;
	}
	out->drive_id = strndup(id, n);
	if (colon) {
		const char *f = colon + 1;
		while (*f == '/')
			f++;
		size_t len = strlen(f);
		while (len && f[len - 1] == '/')
			len--;
		if (len && !(out->folder = strndup(f, len)))
			return -ENOMEM;
	}
	return out->drive_id ? 0 : -ENOMEM;
}

/* People paste "Shared Documents" and unicode folder names unencoded:
 * percent-encode spaces, controls and non-ASCII before parsing. */
static int encode_pasted(const char *text, struct buf *out)
{
	int err = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p && !err;
	     p++) {
		if (*p <= 0x20 || *p >= 0x7f)
			err = buf_appendf(out, "%%%02X", *p);
		else
			err = buf_append(out, p, 1);
	}
	return err;
}

/* The decoded value of key (case-insensitive) in a raw query, malloc'd
 * into *out, or NULL when absent. 0 or -EINVAL (malformed escape). */
static int query_value(const char *query, const char *key, char **out)
{
	size_t klen = strlen(key);

	*out = NULL;
	for (const char *p = query; p && *p;) {
		size_t n = strcspn(p, "&");
		if (n > klen && p[klen] == '=' &&
		    strncasecmp(p, key, klen) == 0)
			return url_percent_decode(p + klen + 1, n - klen - 1,
						  out);
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

/* Replaces s's segments with the '/'-separated parts of path. */
static int set_segments(struct source *s, const char *path)
{
	for (size_t i = 0; i < s->nsegments; i++)
		free(s->segments[i]);
	free(s->segments);
	s->segments = NULL;
	s->nsegments = 0;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (n) {
			char **grown = realloc(s->segments, (s->nsegments + 1) *
								sizeof(char *));
			if (!grown)
				return -ENOMEM;
			s->segments = grown;
			if (!(s->segments[s->nsegments] = strndup(p, n)))
				return -ENOMEM;
			s->nsegments++;
		}
		p += n;
	}
	return 0;
}

/* The folder a library view shows, from its id= (server-relative, e.g.
 * "/sites/Finance/Shared Documents/Reports"): it must be in the site and
 * the library the page's own path names. */
static int apply_view_folder(struct source *s, const char *folder,
			     const char *text, struct buf *msg)
{
	size_t sp = strlen(s->site_path);

	if (strncasecmp(folder, s->site_path, sp) != 0 || folder[sp] != '/') {
		buf_appendf(msg,
			    "SOURCE '%.200s': the folder in id= ('%.200s') is "
			    "not in the site https://%s%s",
			    text, folder, s->host, s->site_path);
		return -EINVAL;
	}
	const char *rest = folder + sp;
	while (*rest == '/')
		rest++;
	size_t lib = strcspn(rest, "/");
	if (s->nsegments && (lib != strlen(s->segments[0]) ||
			     strncasecmp(rest, s->segments[0], lib) != 0)) {
		buf_appendf(msg,
			    "SOURCE '%.200s': the folder in id= ('%.200s') is "
			    "not in the library '%s' of the page",
			    text, folder, s->segments[0]);
		return -EINVAL;
	}
	return set_segments(s, rest);
}

/* "/:f:/r/sites/X/Lib/Folder" is the path itself; other folder links are
 * tokens for the shares endpoint; links to files cannot be mounted. */
static int sharing_link(const char *url, struct source *s, struct buf *msg)
{
	char kind = (char)tolower((unsigned char)s->segments[0][1]);

	if (kind != 'f') {
		buf_appendf(msg,
			    "SOURCE '%.200s' is a sharing link to a file "
			    "(:%c:): spfs mounts a library or a folder; paste "
			    "the link of the folder that holds the file, or "
			    "the folder's address from the browser",
			    url, kind);
		return -EINVAL;
	}
	if (strcasecmp(s->segments[1], "r") == 0) {
		for (int i = 0; i < 2; i++)
			free(s->segments[i]);
		memmove(s->segments, s->segments + 2,
			(s->nsegments - 2) * sizeof(char *));
		s->nsegments -= 2;
		return 0;
	}
	s->share_url = strdup(url);
	return s->share_url ? 0 : -ENOMEM;
}

static bool is_link_kind(const char *seg)
{
	return strlen(seg) == 3 && seg[0] == ':' && seg[2] == ':' &&
	       isalpha((unsigned char)seg[1]);
}

int source_share_id(const char *url, struct buf *out)
{
	size_t n = strlen(url);
	char *enc = malloc(b64_encoded_len(n, B64_URL) + 1);
	int err;

	if (!enc)
		return -ENOMEM;
	b64_encode(url, n, enc, B64_URL);
	err = buf_appendf(out, "u!%s", enc);
	free(enc);
	return err;
}

int source_parse(const char *text, struct source *out, struct buf *msg)
{
	struct url_parts u;
	struct buf enc;
	char *view_folder = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (strncmp(text, "drive:", 6) == 0)
		return parse_drive(text, out, msg);
	buf_init(&enc, 16384);
	err = encode_pasted(text, &enc);
	if (!err)
		err = url_parse(buf_str(&enc), &u);
	if (err || strcmp(u.scheme, "https") != 0) {
		buf_release(&enc);
		if (!err)
			url_parts_release(&u);
		buf_appendf(
		    msg,
		    "SOURCE '%.200s' is not a SharePoint URL "
		    "(https://HOST/sites/SITE[/LIBRARY[/FOLDER]]) or drive:ID",
		    text);
		return -EINVAL;
	}
	err = (out->host = strdup(u.host)) ? 0 : -ENOMEM;
	for (const char *p = u.path; !err && *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (n)
			err = push_segment(out, p, n);
		p += n;
	}
	if (err == -EINVAL)
		buf_appendf(msg, "SOURCE '%.200s': malformed percent-encoding",
			    text);
	/* A library view page: .../Forms/AllItems.aspx, whose id= (or, in
	 * older views, RootFolder=) is the folder it shows. */
	if (!err && out->nsegments &&
	    strlen(out->segments[out->nsegments - 1]) > 5 &&
	    strcasecmp(out->segments[out->nsegments - 1] +
			   strlen(out->segments[out->nsegments - 1]) - 5,
		       ".aspx") == 0) {
		free(out->segments[--out->nsegments]);
		if (out->nsegments &&
		    strcasecmp(out->segments[out->nsegments - 1], "Forms") == 0)
			free(out->segments[--out->nsegments]);
		err = query_value(u.query, "id", &view_folder);
		if (!err && !view_folder)
			err = query_value(u.query, "RootFolder", &view_folder);
		if (err == -EINVAL)
			buf_appendf(
			    msg,
			    "SOURCE '%.200s': malformed percent-encoding "
			    "in the folder (id=)",
			    text);
	}
	if (!err && out->nsegments >= 2 && is_link_kind(out->segments[0]))
		err = sharing_link(buf_str(&enc), out, msg);
	buf_release(&enc);
	url_parts_release(&u);
	if (err)
		goto fail;
	if (out->share_url) { /* resolved by Graph, not by path */
		for (size_t i = 0; i < out->nsegments; i++)
			free(out->segments[i]);
		out->nsegments = 0;
		out->site_path = strdup("");
		if (!out->site_path) {
			err = -ENOMEM;
			goto fail;
		}
		free(view_folder);
		return 0;
	}

	size_t skip = 0;
	if (out->nsegments >= 2 &&
	    (strcasecmp(out->segments[0], "sites") == 0 ||
	     strcasecmp(out->segments[0], "teams") == 0)) {
		size_t n =
		    strlen(out->segments[0]) + strlen(out->segments[1]) + 3;
		out->site_path = malloc(n);
		if (!out->site_path) {
			err = -ENOMEM;
			goto fail;
		}
		snprintf(out->site_path, n, "/%s/%s", out->segments[0],
			 out->segments[1]);
		skip = 2;
	} else if (out->nsegments == 1 &&
		   (strcasecmp(out->segments[0], "sites") == 0 ||
		    strcasecmp(out->segments[0], "teams") == 0)) {
		buf_appendf(msg, "SOURCE '%.200s': no site name after /%s/",
			    text, out->segments[0]);
		err = -EINVAL;
		goto fail;
	} else {
		out->site_path = strdup("");
	}
	if (skip) { /* segments is NULL when there are none */
		for (size_t i = 0; i < skip; i++)
			free(out->segments[i]);
		memmove(out->segments, out->segments + skip,
			(out->nsegments - skip) * sizeof(char *));
		out->nsegments -= skip;
	}
	if (view_folder) {
		err = apply_view_folder(out, view_folder, text, msg);
		if (err)
			goto fail;
		free(view_folder);
	}
	return 0;
fail:
	free(view_folder);
	source_release(out);
	return err;
}

/* ---- resolution ------------------------------------------------------------
 */

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static const char *str_member(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

static struct json_object *get_json(struct graph *g, const char *path,
				    const char *what, struct buf *msg, int *err)
{
	struct http_response resp;
	struct json_object *o = NULL;

	http_response_init(&resp);
	*err = graph_get(g, path, &resp);
	if (*err) {
		buf_appendf(msg, "%s: %s", what,
			    resp.error[0] ? resp.error : strerror(-*err));
	} else if (resp.status == 403) {
		*err = -EACCES;
		buf_appendf(
		    msg,
		    "%s: access denied (HTTP 403, request-id %s). With "
		    "Sites.Selected the identity needs "
		    "the Microsoft Graph application permission Sites.Selected "
		    "(admin-consented) AND a "
		    "grant on this site: POST /sites/{site-id}/permissions "
		    "with roles [\"read\"] for the "
		    "client id (see README, real-tenant set-up)",
		    what, resp.request_id ? resp.request_id : "-");
	} else if (resp.status != 200) {
		*err = graph_fail(what, &resp);
		buf_appendf(msg, "%s: HTTP %ld", what, resp.status);
	} else if (!(o = graph_json_object(resp.body.data, resp.body.len))) {
		*err = -EIO;
		buf_appendf(msg, "%s: malformed JSON from Graph", what);
	}
	http_response_release(&resp);
	return o;
}

/* Decoded last path segment of a URL ("Shared Documents"). malloc'd. */
static char *url_last_segment(const char *url)
{
	const char *end = url + strcspn(url, "?#");
	while (end > url && end[-1] == '/')
		end--;
	const char *start = end;
	while (start > url && start[-1] != '/')
		start--;
	char *out = NULL;
	if (url_percent_decode(start, (size_t)(end - start), &out) != 0)
		return NULL;
	return out;
}

static int set(char **field, const char *value)
{
	free(*field);
	*field = value ? strdup(value) : NULL;
	return !value || *field ? 0 : -ENOMEM;
}

/* Picks the library named by the first segment from the site's drives. */
static int pick_library(struct json_object *drives, const char *want,
			struct source_resolved *out, struct buf *msg)
{
	struct json_object *value;
	size_t n;

	if (!json_object_object_get_ex(drives, "value", &value) ||
	    !json_object_is_type(value, json_type_array)) {
		buf_appendf(msg, "site drives: malformed answer");
		return -EIO;
	}
	n = json_object_array_length(value);
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(value, i);
		const char *name = str_member(d, "name");
		const char *web = str_member(d, "webUrl");
		char *url_name = web ? url_last_segment(web) : NULL;
		int match = (name && strcasecmp(name, want) == 0) ||
			    (url_name && strcasecmp(url_name, want) == 0);
		free(url_name);
		if (match) {
			int err = set(&out->drive_id, str_member(d, "id"));
			err = err ? err : set(&out->drive_name, name);
			err = err ? err : set(&out->drive_web_url, web);
			return err ? err : (out->drive_id ? 0 : -EIO);
		}
	}
	buf_appendf(msg, "library '%s' not found in %s; libraries there:", want,
		    out->site_web_url ? out->site_web_url : "the site");
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(value, i);
		const char *web = str_member(d, "webUrl");
		char *url_name = web ? url_last_segment(web) : NULL;
		buf_appendf(msg, "%s \"%s\" (URL name \"%s\")", i ? "," : "",
			    str_member(d, "name") ? str_member(d, "name") : "?",
			    url_name ? url_name : "?");
		free(url_name);
	}
	if (n == 0)
		buf_appendf(msg, " none visible to this identity");
	return -ENOENT;
}

/* A folder's sharing link, through GET /shares/{u!...}/driveItem: the
 * folder's drive and id. What to paste instead when Graph will not say. */
static int resolve_share(struct graph *g, const char *url,
			 struct source_resolved *out, struct buf *msg,
			 FILE *report)
{
	struct buf path;
	struct json_object *o = NULL, *parent = NULL, *folder = NULL;
	struct timespec t0;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	buf_init(&path, 16384);
	err = buf_append_str(&path, "/shares/");
	err = err ? err : source_share_id(url, &path);
	err = err ? err : buf_append_str(&path, "/driveItem");
	o = err ? NULL : get_json(g, path.data, "sharing link", msg, &err);
	if (err == -EACCES || err == -ENOENT) {
		buf_reset(msg);
		buf_appendf(msg,
			    "the sharing link %.200s could not be resolved "
			    "(%s): Graph resolves a link only for an identity "
			    "allowed to read files tenant-wide "
			    "(Files.Read.All, Sites.Read.All; Sites.Selected "
			    "is not enough) and only while the link is valid. "
			    "Paste the folder's address instead: open the "
			    "link in a browser and copy the address bar "
			    "(.../Forms/AllItems.aspx?id=...), or the "
			    "library's URL",
			    url,
			    err == -EACCES ? "access denied" : "not found");
	}
	if (err)
		goto out;
	if (!json_object_object_get_ex(o, "parentReference", &parent) ||
	    !str_member(parent, "driveId") || !str_member(o, "id")) {
		buf_appendf(msg, "sharing link: Graph's answer names no item");
		err = -EIO;
		goto out;
	}
	if (!json_object_object_get_ex(o, "folder", &folder)) {
		buf_appendf(
		    msg,
		    "the sharing link %.200s leads to a file ('%s'): "
		    "spfs mounts a library or a folder; paste the "
		    "link of the folder that holds it",
		    url, str_member(o, "name") ? str_member(o, "name") : "?");
		err = -ENOTDIR;
		goto out;
	}
	err = set(&out->drive_id, str_member(parent, "driveId"));
	err = err ? err : set(&out->root_id, str_member(o, "id"));
	err = err ? err : set(&out->root_path, "");
	if (!err && report)
		fprintf(report,
			"sharing link: folder '%s'\n  %-9s %s\n  %-9s %s\n"
			"  %-9s %.0f ms\n",
			str_member(o, "name") ? str_member(o, "name") : "?",
			"drive", out->drive_id, "id", out->root_id, "time",
			ms_since(&t0));
out:
	json_object_put(o);
	buf_release(&path);
	return err;
}

int source_resolve(struct graph *g, const struct source *src,
		   struct source_resolved *out, struct buf *msg, FILE *report)
{
	struct buf path, folder;
	struct json_object *o = NULL;
	struct timespec t0;
	int err = 0;

	memset(out, 0, sizeof(*out));
	buf_init(&path, 16384);
	buf_init(&folder, 16384);

	if (src->share_url) {
		err = resolve_share(g, src->share_url, out, msg, report);
		goto out;
	}
	if (src->drive_id) {
		err = set(&out->drive_id, src->drive_id);
		if (!err && src->folder)
			err = buf_append_str(&folder, src->folder);
	} else {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		err = buf_appendf(&path, "/sites/%s", src->host);
		if (!err && src->site_path[0])
			err = buf_appendf(&path, ":%s", src->site_path);
		o = err ? NULL : get_json(g, path.data, "site", msg, &err);
		if (err == -ENOENT) {
			buf_reset(msg);
			buf_appendf(
			    msg,
			    "site https://%s%s not found (check the URL; the "
			    "site must exist and be visible to the identity)",
			    src->host, src->site_path);
		}
		if (err)
			goto out;
		err = set(&out->site_id, str_member(o, "id"));
		err = err ? err
			  : set(&out->site_web_url, str_member(o, "webUrl"));
		json_object_put(o);
		o = NULL;
		if (!err && !out->site_id)
			err = -EIO;
		if (err)
			goto out;
		if (report)
			fprintf(report, "site: %s\n  %-9s %s\n  %-9s %.0f ms\n",
				out->site_web_url ? out->site_web_url : "?",
				"id", out->site_id, "time", ms_since(&t0));

		clock_gettime(CLOCK_MONOTONIC, &t0);
		buf_reset(&path);
		if (src->nsegments == 0) {
			err =
			    buf_appendf(&path, "/sites/%s/drive", out->site_id);
			o = err ? NULL
				: get_json(g, path.data, "default library", msg,
					   &err);
			if (!err) {
				err = set(&out->drive_id, str_member(o, "id"));
				err = err ? err
					  : set(&out->drive_name,
						str_member(o, "name"));
				err = err ? err
					  : set(&out->drive_web_url,
						str_member(o, "webUrl"));
			}
		} else {
			err = buf_appendf(
			    &path,
			    "/sites/%s/drives?$select=id,name,webUrl,driveType",
			    out->site_id);
			o = err ? NULL
				: get_json(g, path.data, "site libraries", msg,
					   &err);
			if (!err)
				err =
				    pick_library(o, src->segments[0], out, msg);
			for (size_t i = 1; !err && i < src->nsegments; i++)
				err = buf_appendf(&folder, "%s%s",
						  i > 1 ? "/" : "",
						  src->segments[i]);
		}
		json_object_put(o);
		o = NULL;
		if (err)
			goto out;
		if (report)
			fprintf(report,
				"library: %s\n  %-9s %s\n  %-9s %s\n  %-9s "
				"%.0f ms\n",
				out->drive_name ? out->drive_name : "?", "id",
				out->drive_id, "webUrl",
				out->drive_web_url ? out->drive_web_url : "?",
				"time", ms_since(&t0));
	}

	struct graph_item root;
	err = graph_item_get_by_path(g, out->drive_id, buf_str(&folder), &root);
	if (err == -ENOENT) {
		buf_appendf(msg,
			    folder.len ? "folder '%s' not found in the library"
				       : "library %s not found%s",
			    folder.len ? folder.data : out->drive_id, "");
		goto out;
	}
	if (err) {
		buf_appendf(msg, "library root: %s", strerror(-err));
		goto out;
	}
	if (!root.is_folder) {
		buf_appendf(msg,
			    "'%s' is a file, not a folder: SOURCE must name a "
			    "library or a folder",
			    folder.data);
		graph_item_release(&root);
		err = -ENOTDIR;
		goto out;
	}
	out->root_id = root.id;
	root.id = NULL;
	graph_item_release(&root);
	err = set(&out->root_path, buf_str(&folder));
out:
	json_object_put(o);
	buf_release(&path);
	buf_release(&folder);
	if (err)
		source_resolved_release(out);
	return err;
}
