/* SPDX-License-Identifier: MIT */
#ifndef SPFS_GRAPH_SOURCE_H
#define SPFS_GRAPH_SOURCE_H

/*
 * SOURCE: what a person copies from the browser, resolved to a drive and a
 * root folder with per-site calls only (so Sites.Selected suffices).
 *
 *   https://HOST/sites/SITE                       default library
 *   https://HOST/sites/SITE/LIBRARY[/FOLDER...]   LIBRARY = title or URL name
 *   https://HOST/teams/SITE/...                   team sites
 *   https://HOST[/LIBRARY[/FOLDER...]]            the tenant root site
 *   drive:DRIVE_ID[:/FOLDER...]                   skip the site look-ups
 * A trailing "Forms/AllItems.aspx" (the library's view page) is dropped;
 * its query's id= (or RootFolder=), the folder the browser shows, names the
 * folder to mount. Sharing links: https://HOST/:f:/r/PATH is PATH; other
 * folder links (/:f:/s/..., /:f:/g/...) are resolved with Graph's shares
 * endpoint; links to files (:x:, :w:, ...) are refused, saying what to
 * paste instead.
 */

#include <stdio.h>

#include "base/buf.h"

struct graph;

struct source {
	char *host;	 /* NULL for drive: sources */
	char *site_path; /* "/sites/X", "/teams/X" or "" (root site) */
	char **segments; /* decoded path segments after the site */
	size_t nsegments;
	char *drive_id;	 /* drive: sources */
	char *folder;	 /* drive: sources: "a/b" or NULL */
	char *share_url; /* a folder's sharing link, to resolve; or NULL */
};

/* 0, or -EINVAL with a one-line explanation in *msg. */
int source_parse(const char *text, struct source *out, struct buf *msg);

/* The shares endpoint's id for a sharing URL: "u!" + unpadded base64url of
 * the URL's bytes, appended to out. 0, -EFBIG or -ENOMEM. */
int source_share_id(const char *url, struct buf *out);
void source_release(struct source *s);

struct source_resolved {
	char *site_id, *site_web_url;
	char *drive_id, *drive_name, *drive_web_url;
	char *root_id;	 /* the mounted folder's item id */
	char *root_path; /* "" or "a/b" below the library root */
};

/*
 * Resolves with Graph. Reports each step with its timing to report when
 * non-NULL (spfs --check). 0, or -errno with an actionable line in *msg:
 * unknown site, unknown library (listing the libraries that exist), folder
 * not found, or 403 with what Sites.Selected needs.
 */
int source_resolve(struct graph *g, const struct source *src,
		   struct source_resolved *out, struct buf *msg, FILE *report);
void source_resolved_release(struct source_resolved *r);

#endif
