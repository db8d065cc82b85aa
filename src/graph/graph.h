/* SPDX-License-Identifier: MIT */
#ifndef SPFS_GRAPH_GRAPH_H
#define SPFS_GRAPH_GRAPH_H

/*
 * Microsoft Graph client: authenticated requests against the Graph base URL,
 * with the rules every Graph call shares:
 *  - a 401 InvalidAuthenticationToken drops the token, refreshes, retries once;
 *  - 429/503 pause ALL Graph requests of this client until Retry-After has
 *    passed (SharePoint counts throttled calls too), then retry;
 *  - network errors and 5xx retry with exponential backoff and jitter;
 *  - a final failure is logged once with Graph's error code and request-id.
 * Drive operations and the JSON model (item.h) are built on graph_get().
 */

#include "http/http.h"

struct auth;
struct graph;

struct graph_config {
	const char *base_url; /* "https://graph.microsoft.com/v1.0" */
	int max_attempts;     /* per request, 0 = 8 */
	double backoff_base;  /* first backoff in seconds, 0 = 0.5 */
	double give_up_after; /* seconds a request may take, retries
				 included (read_timeout); 0 = no limit */
};

/* Borrows http and auth. NULL + *err (-ENOMEM). */
struct graph *graph_new(struct http *http, struct auth *auth,
			const struct graph_config *cfg, int *err);
void graph_free(struct graph *g);

/*
 * GET a Graph path ("/drives/x/root", joined to the base URL) or an
 * absolute URL (a nextLink or deltaLink, used byte for byte).
 * Returns 0 when a final response arrived (look at resp->status; throttles
 * and 5xx were retried first), a negative errno from the transport after
 * retries, or the auth error (-EACCES, -EAGAIN) when no token could be had.
 * Retries stop at max_attempts, or sooner when the next wait would end past
 * give_up_after: the last answer is then returned as it came.
 */
int graph_get(struct graph *g, const char *path_or_url,
	      struct http_response *resp);

/* errno for a final HTTP status (404 -> ENOENT, 403 -> EACCES, ...). */
int graph_status_errno(long status);

/*
 * Logs one line for a failed response: what, status, Graph's error code
 * (innerError/innererror walked for the most specific one) and request-id.
 * Returns graph_status_errno(resp->status).
 */
int graph_fail(const char *what, const struct http_response *resp);

/* The error code of a Graph error body ({"error": {"code", "innerError"}}),
 * the innermost one present, into out (always terminated; "-" when there is
 * none; only [A-Za-z0-9._-], other bytes as '?'). For graph_fail, fuzzing. */
void graph_error_code(const char *body, size_t len, char *out, size_t cap);

/*
 * One GET of a pre-authenticated download URL (no Authorization header ever:
 * the URL is the credential), used byte for byte. length 0 asks for
 * everything from offset without a Range header when offset is 0. Body
 * bytes of a 200 or 206 go to sink; other bodies are dropped. Waits for the
 * throttle gate first, and a 429/503 closes it, but nothing is retried here:
 * the caller owns the resume position. Returns as http_perform().
 */
int graph_download(struct graph *g, const char *url, unsigned long long offset,
		   unsigned long long length, http_sink_fn sink, void *sink_ctx,
		   struct http_response *resp);

/* The Content-Range of a download response: first byte and total (-1 when
 * the header says "*"). 0, or -EINVAL when absent or malformed. */
int graph_download_range(const struct http_response *resp, long long *first,
			 long long *total);

/* Sleeps like http_sleep() on this client's transport: 0, or -ESHUTDOWN
 * when the process is shutting down (http_abort), early. Layers above
 * back off with it, so that no wait outlives an unmount. */
int graph_sleep(struct graph *g, double seconds);

struct graph_stats {
	unsigned long requests;	    /* HTTP requests sent */
	unsigned long auth_retries; /* 401s answered by refresh + retry */
	unsigned long throttles;    /* 429/503 received */
	unsigned long retries;	    /* retries after 5xx or network errors */
	double throttled_seconds;   /* total Retry-After honoured */
	/* From the credential, so callers above graph need not know auth. */
	unsigned long token_requests; /* to the token endpoint (refreshes) */
	unsigned long token_failures;
	long long token_expires_at; /* epoch s of the current token, 0: none */
};
void graph_get_stats(struct graph *g, struct graph_stats *out);

/* Requests by route and status class, for metrics. */
enum graph_route {
	GRAPH_ROUTE_SITE,
	GRAPH_ROUTE_DRIVES,
	GRAPH_ROUTE_DRIVE,
	GRAPH_ROUTE_ITEM,
	GRAPH_ROUTE_CHILDREN,
	GRAPH_ROUTE_DELTA,
	GRAPH_ROUTE_CONTENT,
	GRAPH_ROUTE_DOWNLOAD,
	GRAPH_ROUTE_OTHER,
	GRAPH_ROUTES
};
enum graph_status_class {
	GRAPH_STATUS_2XX,
	GRAPH_STATUS_3XX,
	GRAPH_STATUS_4XX,
	GRAPH_STATUS_429,
	GRAPH_STATUS_5XX,
	GRAPH_STATUS_ERROR, /* no HTTP answer */
	GRAPH_STATUSES
};
enum graph_route graph_route_of(const char *url);
typedef void (*graph_count_fn)(void *ctx, const char *route, const char *status,
			       unsigned long n);
/* Calls fn for every (route, status) pair seen at least once. */
void graph_route_counts(struct graph *g, graph_count_fn fn, void *ctx);

#endif
