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
 *  - a final failure is logged once with Graph's error code and request-id;
 *  - the bearer token goes only to the base URL's origin (scheme, host,
 *    port): an absolute URL elsewhere is refused without a request;
 *  - with give_up_after, a request and its retries end by that deadline.
 * Drive operations and the JSON model (item.h) are built on graph_get().
 */

#include "http/http.h"

struct auth;
struct graph;

/* The largest Graph answer read (a page of 1,000 items is about 2 MiB), and
 * the most memory its JSON parse may take (base/json_cost.h). */
#define GRAPH_MAX_BODY	    (8u << 20)
#define GRAPH_JSON_COST_MAX (32u << 20)

struct graph_config {
	const char *base_url; /* "https://graph.microsoft.com/v1.0" */
	int max_attempts;     /* per request, 0 = 8 */
	double backoff_base;  /* first backoff in seconds, 0 = 0.5 */
	double give_up_after; /* seconds a request may take, retries
				 included (read_timeout); 0 = no limit */
};

/* Borrows http and auth. NULL + *err (-ENOMEM; -EINVAL for a base URL
 * that is not http(s)). */
struct graph *graph_new(struct http *http, struct auth *auth,
			const struct graph_config *cfg, int *err);
void graph_free(struct graph *g);

/*
 * GET a Graph path ("/drives/x/root", joined to the base URL) or an
 * absolute URL (a nextLink or deltaLink, used byte for byte).
 * Returns 0 when a final response arrived (look at resp->status; throttles
 * and 5xx were retried first), a negative errno from the transport after
 * retries, or the auth error (-EACCES, -EAGAIN) when no token could be had.
 * Retries stop at max_attempts, or at give_up_after seconds from the call:
 * the last answer is then returned as it came (a throttle gate closed past
 * that time: status 429 without a request). An absolute URL that is not on
 * the base's origin is refused with -EPERM and a log line. Bodies past
 * GRAPH_MAX_BODY fail with -EFBIG.
 */
int graph_get(struct graph *g, const char *path_or_url,
	      struct http_response *resp);

/* True when url is on the base's origin: scheme, host and port as both our
 * URL parser and libcurl read them, with no userinfo. */
int graph_link_ours(struct graph *g, const char *url);
/* The base's origin, "https://host:port" (for log lines). Borrowed. */
const char *graph_origin(const struct graph *g);

/* A slot for one collection page (its body and parse tree): blocks while
 * all are taken. Bounds the memory of concurrent listings and delta
 * rounds. Every take is followed by one give. */
void graph_page_slot_take(struct graph *g);
void graph_page_slot_give(struct graph *g);

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
 * throttle gates first (Graph's and the download host's); a 429/503 closes
 * the download gate only, for at most a minute. Nothing is retried here:
 * the caller owns the resume position. The transfer ends by give_up_after
 * seconds from the call. Returns as http_perform(); a URL that is not
 * https (unless allowed) is -EINVAL with a log line naming its origin.
 */
int graph_download(struct graph *g, const char *url, unsigned long long offset,
		   unsigned long long length, http_sink_fn sink, void *sink_ctx,
		   struct http_response *resp);
/*
 * The same with the caller's deadline (CLOCK_MONOTONIC seconds, 0: none)
 * instead of give_up_after: the gate wait and the transfer end by then.
 * A gate closed past the deadline returns -ETIMEDOUT at once, resp->error
 * saying so. For a reader enforcing one deadline across its retries.
 */
int graph_download_until(struct graph *g, const char *url,
			 unsigned long long offset, unsigned long long length,
			 double deadline, http_sink_fn sink, void *sink_ctx,
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
