/* SPDX-License-Identifier: MIT */
/*
 * Graph request core. A 401 whose error code is InvalidAuthenticationToken
 * (or that carries a Bearer challenge) means our token is no longer accepted
 * (revoked, clock skew, expired early): drop it, get a new one, retry once.
 * A second 401 is returned to the caller: retrying further would only hide
 * a real permission problem.
 */
#include "config.h"

#include "graph/graph.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "base/buf.h"
#include "base/log.h"

struct graph {
	struct http *http;
	struct auth *auth;
	char *base_url;
	atomic_ulong requests;
	atomic_ulong auth_retries;
};

struct graph *graph_new(struct http *http, struct auth *auth,
			const char *base_url, int *err)
{
	struct graph *g = calloc(1, sizeof(*g));

	if (!g || !(g->base_url = strdup(base_url))) {
		free(g);
		*err = -ENOMEM;
		return NULL;
	}
	/* Paths are joined as base + "/path": keep no trailing slash. */
	size_t n = strlen(g->base_url);
	while (n > 0 && g->base_url[n - 1] == '/')
		g->base_url[--n] = '\0';
	g->http = http;
	g->auth = auth;
	*err = 0;
	return g;
}

void graph_free(struct graph *g)
{
	if (!g)
		return;
	free(g->base_url);
	free(g);
}

static int token_rejected(const struct http_response *resp)
{
	if (resp->status != 401)
		return 0;
	if (resp->body.data &&
	    strstr(resp->body.data, "InvalidAuthenticationToken"))
		return 1;
	return resp->www_authenticate &&
	       strncasecmp(resp->www_authenticate, "Bearer", 6) == 0;
}

int graph_get(struct graph *g, const char *path_or_url,
	      struct http_response *resp)
{
	struct buf url, token, authz;
	int err = 0;

	buf_init(&url, 16 * 1024);
	buf_init_secret(&token, 64 * 1024);
	buf_init_secret(&authz, 64 * 1024 + 16);
	if (strncmp(path_or_url, "https://", 8) == 0 ||
	    strncmp(path_or_url, "http://", 7) == 0)
		err = buf_append_str(&url, path_or_url);
	else
		err = buf_appendf(&url, "%s%s%s", g->base_url,
				  path_or_url[0] == '/' ? "" : "/", path_or_url);
	if (err)
		goto out;

	for (int attempt = 0; attempt < 2; attempt++) {
		buf_reset(&token);
		buf_reset(&authz);
		err = auth_token(g->auth, &token);
		if (err)
			goto out;
		err = buf_appendf(&authz, "Bearer %s", token.data);
		if (err)
			goto out;
		const struct http_header headers[] = {
			{"Authorization", authz.data},
			{"Accept", "application/json"},
		};
		struct http_request req = {
			.url = url.data,
			.headers = headers,
			.nheaders = 2,
			.timeout_ms = 60000,
		};
		atomic_fetch_add(&g->requests, 1);
		err = http_perform(g->http, &req, resp);
		if (err || !token_rejected(resp) || attempt == 1)
			break;
		log_info("graph: 401 (request-id %s): refreshing the token and retrying once",
			 resp->request_id ? resp->request_id : "-");
		atomic_fetch_add(&g->auth_retries, 1);
		auth_invalidate(g->auth, token.data);
	}
out:
	buf_release(&url);
	buf_release(&token);
	buf_release(&authz);
	return err;
}

void graph_get_stats(struct graph *g, struct graph_stats *out)
{
	out->requests = atomic_load(&g->requests);
	out->auth_retries = atomic_load(&g->auth_retries);
}
