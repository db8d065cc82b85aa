/* SPDX-License-Identifier: MIT */
#ifndef SPFS_GRAPH_GRAPH_H
#define SPFS_GRAPH_GRAPH_H

/*
 * Microsoft Graph client: authenticated requests against the Graph base URL.
 * Owns the rule that a 401 InvalidAuthenticationToken drops the cached token,
 * fetches a fresh one and retries exactly once. Drive operations and the JSON
 * model are built on graph_get().
 */

#include "http/http.h"

struct auth;
struct graph;

/* Borrows http and auth. base_url like "https://graph.microsoft.com/v1.0". */
struct graph *graph_new(struct http *http, struct auth *auth,
			const char *base_url, int *err);
void graph_free(struct graph *g);

/*
 * GET a Graph path ("/drives/x/root", joined to the base URL) or an absolute
 * URL (a nextLink), with the bearer token. resp must be initialised by the
 * caller and is filled with the final answer.
 * Returns 0 when a response arrived (look at resp->status), a negative errno
 * from the transport, or the auth error (-EACCES, -EAGAIN) when no token
 * could be had.
 */
int graph_get(struct graph *g, const char *path_or_url,
	      struct http_response *resp);

struct graph_stats {
	unsigned long requests;
	unsigned long auth_retries; /* 401s answered by refresh + retry */
};
void graph_get_stats(struct graph *g, struct graph_stats *out);

#endif
