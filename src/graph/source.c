/* SPDX-License-Identifier: MIT */
/*
 * SOURCE parsing and resolution. Only per-site calls: GET /sites/{host}:{path},
 * GET /sites/{id}/drives, GET /drives/{id}/root:/{folder}: -- never tenant-wide
 * search, which Sites.Selected does not allow.
 */
#include "config.h"

#include "graph/source.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

int source_parse(const char *text, struct source *out, struct buf *msg)
{
	struct url_parts u;
	struct buf enc;
	int err;

	memset(out, 0, sizeof(*out));
	if (strncmp(text, "drive:", 6) == 0)
		return parse_drive(text, out, msg);
	buf_init(&enc, 16384);
	err = encode_pasted(text, &enc);
	if (!err)
		err = url_parse(buf_str(&enc), &u);
	buf_release(&enc);
	if (err || strcmp(u.scheme, "https") != 0) {
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
	url_parts_release(&u);
	if (err)
		goto fail;

	/* The library's view page: .../Forms/AllItems.aspx */
	if (out->nsegments && strlen(out->segments[out->nsegments - 1]) > 5 &&
	    strcasecmp(out->segments[out->nsegments - 1] +
			   strlen(out->segments[out->nsegments - 1]) - 5,
		       ".aspx") == 0) {
		free(out->segments[--out->nsegments]);
		if (out->nsegments &&
		    strcasecmp(out->segments[out->nsegments - 1], "Forms") == 0)
			free(out->segments[--out->nsegments]);
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
	return 0;
fail:
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
