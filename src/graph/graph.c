/* SPDX-License-Identifier: MIT */
/*
 * Graph request core.
 *
 * The bearer token goes to one origin only: the configured Graph base's
 * scheme, host and port. An absolute URL (a nextLink or deltaLink from a
 * page) on any other origin is refused before a request is made, compared
 * as both our URL parser and libcurl's read it.
 *
 * Throttle gates (monotonic seconds, shared by all threads): a 429/503 from
 * Graph moves g->not_before to now + Retry-After, and every Graph request
 * and download waits for it, so one throttled call pauses the whole client,
 * as SharePoint asks. A 429/503 from the download host moves only
 * g->download_not_before, capped at DOWNLOAD_RETRY_AFTER_MAX: the content
 * host cannot pause Graph, nor downloads for long.
 *
 * Deadlines: with give_up_after (read_timeout) set, a request and all its
 * retries end by start + give_up_after: each attempt's transfer is limited
 * to the time left, a backoff is shortened so a last attempt still fits,
 * and a gate closed past the deadline fails the request at once.
 *
 * Page slots: a collection page's body and parse tree are the largest
 * memory Graph answers can take (GRAPH_MAX_BODY plus GRAPH_JSON_COST_MAX);
 * at most PAGE_SLOTS pages are held at once, whatever the number of
 * listings.
 *
 * Lock order: g->lock is a leaf; never held across I/O or sleeps.
 */
#include "config.h"

#include "graph/graph.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "auth/auth.h"
#include "base/buf.h"
#include "base/json_cost.h"
#include "base/log.h"
#include "base/url.h"
#include "http/content_range.h"
#include "http/retry_after.h"

/* A Retry-After from the download host pauses downloads at most this long:
 * a hostile or confused content host cannot stop reads for an hour. */
#define DOWNLOAD_RETRY_AFTER_MAX 60.0
/* Request without read_timeout: the whole transfer's bound. */
#define REQUEST_TIMEOUT_MS 120000L
/* Time a last attempt needs at least: below it, a retry is not tried. */
#define LAST_ATTEMPT_MIN 0.25
#define PAGE_SLOTS	 2

struct graph {
	struct http *http;
	struct auth *auth;
	char *base_url;
	char *origin; /* the base's origin, in http_url_origin()'s form */
	int max_attempts;
	double backoff_base;
	double give_up_after;
	pthread_mutex_t lock; /* guards not_before, download_not_before,
				 stats.throttled_seconds, the *_logged flags,
				 page_slots */
	double not_before;    /* monotonic: no Graph request before this */
	double download_not_before; /* monotonic: no download before this */
	int throttle_logged, download_throttle_logged;
	int failure_logged; /* an outage is warned of once, until a success */
	int page_slots;	    /* free page slots */
	pthread_cond_t slot_freed;
	atomic_ulong requests, auth_retries, throttles, retries;
	double throttled_seconds;
	atomic_ulong by_route[GRAPH_ROUTES][GRAPH_STATUSES];
};

static const char *const route_names[GRAPH_ROUTES] = {
    "site",  "drives",	"drive",    "item", "children",
    "delta", "content", "download", "other"};
static const char *const status_names[GRAPH_STATUSES] = {"2xx", "3xx", "4xx",
							 "429", "5xx", "error"};

/* The route of a Graph URL, from its path: what metrics group by. */
enum graph_route graph_route_of(const char *url)
{
	const char *p = url;
	const char *scheme = strstr(url, "://");

	if (scheme) {
		p = strchr(scheme + 3, '/');
		if (!p)
			return GRAPH_ROUTE_OTHER;
	}
	const char *q = strchr(p, '?');
	size_t n = q ? (size_t)(q - p) : strlen(p);
	char path[512];
	if (n >= sizeof(path))
		n = sizeof(path) - 1;
	memcpy(path, p, n);
	path[n] = '\0';
	if (strstr(path, "/delta"))
		return GRAPH_ROUTE_DELTA;
	if (n >= 9 && strcmp(path + n - 9, "/children") == 0)
		return GRAPH_ROUTE_CHILDREN;
	if ((n >= 8 && strcmp(path + n - 8, "/content") == 0) ||
	    (n >= 9 && strcmp(path + n - 9, ":/content") == 0))
		return GRAPH_ROUTE_CONTENT;
	if (strstr(path, "/drives/")) {
		const char *d = strstr(path, "/drives/") + 8;
		if (strstr(d, "/items/") || strstr(d, "/root"))
			return GRAPH_ROUTE_ITEM;
		return strchr(d, '/') ? GRAPH_ROUTE_OTHER : GRAPH_ROUTE_DRIVE;
	}
	if (strstr(path, "/sites/")) {
		if (strstr(path, "/drives"))
			return GRAPH_ROUTE_DRIVES;
		if (strstr(path, "/drive"))
			return GRAPH_ROUTE_DRIVE;
		return GRAPH_ROUTE_SITE;
	}
	return GRAPH_ROUTE_OTHER;
}

static void count_request(struct graph *g, enum graph_route route, int err,
			  long status)
{
	enum graph_status_class c;

	if (err || status <= 0)
		c = GRAPH_STATUS_ERROR;
	else if (status == 429)
		c = GRAPH_STATUS_429;
	else if (status >= 500)
		c = GRAPH_STATUS_5XX;
	else if (status >= 400)
		c = GRAPH_STATUS_4XX;
	else if (status >= 300)
		c = GRAPH_STATUS_3XX;
	else
		c = GRAPH_STATUS_2XX;
	atomic_fetch_add(&g->by_route[route][c], 1);
}

void graph_route_counts(struct graph *g, graph_count_fn fn, void *ctx)
{
	for (int r = 0; r < GRAPH_ROUTES; r++)
		for (int c = 0; c < GRAPH_STATUSES; c++) {
			unsigned long n = atomic_load(&g->by_route[r][c]);
			if (n)
				fn(ctx, route_names[r], status_names[c], n);
		}
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every wait of this layer ends early when the process shuts down (the
 * request after it then fails with -ESHUTDOWN at once). */
/* 0, or -ESHUTDOWN when the daemon stops (the sleep ends early). */
static int sleep_s(struct graph *g, double s)
{
	return http_sleep(g->http, s);
}

int graph_sleep(struct graph *g, double seconds)
{
	return http_sleep(g->http, seconds);
}

static double jitter(void)
{
	unsigned r = 0;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (unsigned)rand();
	return 0.5 + (double)(r % 1000) / 1000.0; /* 0.5 .. 1.5 */
}

/* The origin of url as both parsers read it ("scheme://host:port"), or
 * NULL when they disagree or either refuses it (userinfo, odd bytes). */
static char *link_origin(const char *url)
{
	struct url_parts p;
	char *curl_view = http_url_origin(url);
	char ours[600];
	int n = -1;

	if (!curl_view || url_parse(url, &p) != 0) {
		free(curl_view);
		return NULL;
	}
	int port = p.port ? p.port : strcmp(p.scheme, "https") == 0 ? 443 : 80;
	/* IPv6 hosts come without brackets from url_parse. */
	if (strlen(p.host) < 512)
		n = snprintf(ours, sizeof(ours),
			     strchr(p.host, ':') ? "%s://[%s]:%d"
						 : "%s://%s:%d",
			     p.scheme, p.host, port);
	for (char *c = ours; n > 0 && *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	url_parts_release(&p);
	if (n < 0 || strcmp(ours, curl_view) != 0) {
		free(curl_view);
		return NULL;
	}
	return curl_view;
}

int graph_link_ours(struct graph *g, const char *url)
{
	char *o = link_origin(url);
	int ours = o && strcmp(o, g->origin) == 0;

	free(o);
	return ours;
}

const char *graph_origin(const struct graph *g)
{
	return g->origin;
}

struct graph *graph_new(struct http *http, struct auth *auth,
			const struct graph_config *cfg, int *err)
{
	struct graph *g = calloc(1, sizeof(*g));

	if (!g || !(g->base_url = strdup(cfg->base_url))) {
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
	g->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 8;
	g->backoff_base = cfg->backoff_base > 0 ? cfg->backoff_base : 0.5;
	g->give_up_after = cfg->give_up_after > 0 ? cfg->give_up_after : 0;
	g->page_slots = PAGE_SLOTS;
	g->origin = link_origin(g->base_url);
	if (!g->origin) {
		log_error("graph: the base URL %s is not an http(s) URL",
			  g->base_url);
		free(g->base_url);
		free(g);
		*err = -EINVAL;
		return NULL;
	}
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->slot_freed, NULL);
	*err = 0;
	return g;
}

void graph_free(struct graph *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->slot_freed);
	free(g->base_url);
	free(g->origin);
	free(g);
}

void graph_page_slot_take(struct graph *g)
{
	pthread_mutex_lock(&g->lock);
	while (g->page_slots == 0)
		pthread_cond_wait(&g->slot_freed, &g->lock);
	g->page_slots--;
	pthread_mutex_unlock(&g->lock);
}

void graph_page_slot_give(struct graph *g)
{
	pthread_mutex_lock(&g->lock);
	g->page_slots++;
	pthread_cond_signal(&g->slot_freed);
	pthread_mutex_unlock(&g->lock);
}

int graph_status_errno(long status)
{
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EEXIST;
	case 410:
		return -ESTALE;
	case 416:
		return -ERANGE;
	case 423:
		return -EBUSY;
	case 429:
	case 503:
		return -EAGAIN;
	case 507:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

/* The most specific error code: error.code, then nested inner errors. The
 * code goes into a log line, so anything but [A-Za-z0-9._-] becomes '?'. */
void graph_error_code(const char *body, size_t len, char *out, size_t cap)
{
	struct json_object *root = NULL, *err, *v;
	struct json_tokener *tok;
	size_t out_len = 0;

	if (!cap)
		return;
	snprintf(out, cap, "-");
	if (!body || !len || len > INT32_MAX ||
	    json_cost(body, len) > GRAPH_JSON_COST_MAX ||
	    !(tok = json_tokener_new()))
		return;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	if (root && json_object_object_get_ex(root, "error", &err) &&
	    json_object_is_type(err, json_type_object)) {
		for (int depth = 0; err && depth < 8; depth++) {
			if (json_object_object_get_ex(err, "code", &v) &&
			    json_object_is_type(v, json_type_string) &&
			    json_object_get_string_len(v) > 0) {
				/* By length: "\u0000" must not cut it. */
				size_t n =
				    (size_t)json_object_get_string_len(v);
				n = n < cap - 1 ? n : cap - 1;
				memcpy(out, json_object_get_string(v), n);
				out[n] = '\0';
				out_len = n;
			}
			struct json_object *inner = NULL;
			json_object_object_foreach(err, key, val)
			{
				if (strcasecmp(key, "innererror") == 0 &&
				    json_object_is_type(val, json_type_object))
					inner = val;
			}
			err = inner;
		}
	}
	json_object_put(root);
	for (size_t i = 0; i < out_len; i++)
		if (!out[i] ||
		    (!isalnum((unsigned char)out[i]) && !strchr("._-", out[i])))
			out[i] = '?';
}

int graph_fail(const char *what, const struct http_response *resp)
{
	char code[96];

	graph_error_code(resp->body.data, resp->body.len, code, sizeof(code));
	log_warn("%s: HTTP %ld %s (request-id %s, client-request-id %s)", what,
		 resp->status, code, resp->request_id ? resp->request_id : "-",
		 resp->client_request_id);
	return graph_status_errno(resp->status);
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

static double gate_wait(struct graph *g, bool download)
{
	pthread_mutex_lock(&g->lock);
	double until = g->not_before;
	if (download && g->download_not_before > until)
		until = g->download_not_before;
	double wait = until - mono_now();
	pthread_mutex_unlock(&g->lock);
	return wait > 0 ? wait : 0;
}

static double backoff(const struct graph *g, int attempt)
{
	return g->backoff_base * (1 << (attempt < 6 ? attempt - 1 : 5)) *
	       jitter();
}

/* Warn of the first request given up on, then quietly until one succeeds:
 * every caller (readers, listings, the change poll) fails alike in an
 * outage, and one line says why. */
static enum log_level failure_level(struct graph *g)
{
	pthread_mutex_lock(&g->lock);
	int first = !g->failure_logged;
	g->failure_logged = 1;
	pthread_mutex_unlock(&g->lock);
	return first ? LOG_WARN : LOG_DEBUG;
}

/* A 429/503: close a gate until Retry-After has passed (Graph's for
 * everyone; the download host's for downloads, capped). */
static void throttled(struct graph *g, const struct http_response *resp,
		      int attempt, bool download)
{
	double ra;

	if (http_retry_after_parse(resp->retry_after, time(NULL), &ra) != 0) {
		/* No usable Retry-After: back off exponentially from 2 s. */
		ra = 2.0;
		for (int i = 1; i < attempt && ra < 60; i++)
			ra *= 2;
	}
	if (download && ra > DOWNLOAD_RETRY_AFTER_MAX)
		ra = DOWNLOAD_RETRY_AFTER_MAX;
	atomic_fetch_add(&g->throttles, 1);
	pthread_mutex_lock(&g->lock);
	double until = mono_now() + ra;
	double *gate = download ? &g->download_not_before : &g->not_before;
	int *logged =
	    download ? &g->download_throttle_logged : &g->throttle_logged;
	if (until > *gate)
		*gate = until;
	g->throttled_seconds += ra;
	int first = !*logged;
	*logged = 1;
	pthread_mutex_unlock(&g->lock);
	if (first)
		log_warn("%s: throttled (HTTP %ld, Retry-After %s): pausing "
			 "%s for %.0f s",
			 download ? "download" : "graph", resp->status,
			 resp->retry_after ? resp->retry_after : "-",
			 download ? "downloads" : "all Graph requests", ra);
	else
		log_debug("%s: throttled again, pausing %.0f s",
			  download ? "download" : "graph", ra);
}

/* Milliseconds left until deadline (0: none), for a transfer's timeout;
 * at least 1, as curl reads 0 as "no timeout". */
static long ms_left(double deadline, long without)
{
	if (!deadline)
		return without;
	double ms = (deadline - mono_now()) * 1000.0;
	return ms < 1 ? 1 : ms > (double)LONG_MAX ? LONG_MAX : (long)ms;
}

/* The absolute URL for path_or_url, into url; an absolute one must be on
 * the Graph origin: nothing else gets the token. */
static int request_url(struct graph *g, const char *path_or_url,
		       struct buf *url)
{
	if (strncasecmp(path_or_url, "https://", 8) != 0 &&
	    strncasecmp(path_or_url, "http://", 7) != 0)
		return buf_appendf(url, "%s%s%s", g->base_url,
				   path_or_url[0] == '/' ? "" : "/",
				   path_or_url);
	if (!graph_link_ours(g, path_or_url)) {
		char *o = http_url_origin(path_or_url);
		log_warn("graph: refusing to send the access token to %s: "
			 "only %s gets it",
			 o ? o : "a URL that does not parse", g->origin);
		free(o);
		return -EPERM;
	}
	return buf_append_str(url, path_or_url);
}

/* Why a request gave up before its deadline's end, said once per outage. */
static void give_up(struct graph *g, int err, const struct http_response *resp,
		    int attempt, const char *why)
{
	if (err)
		log_msg(failure_level(g),
			"graph: giving up within read_timeout (%.0f s, %d "
			"attempts%s): %s",
			g->give_up_after, attempt, why, resp->error);
	else
		log_msg(failure_level(g),
			"graph: giving up within read_timeout (%.0f s, %d "
			"attempts%s): HTTP %ld",
			g->give_up_after, attempt, why, resp->status);
}

int graph_get(struct graph *g, const char *path_or_url,
	      struct http_response *resp)
{
	struct buf url, token, authz;
	int auth_retried = 0;
	int err = 0;

	buf_init(&url, 16 * 1024);
	buf_init_secret(&token, 64 * 1024);
	buf_init_secret(&authz, 64 * 1024 + 16);
	err = request_url(g, path_or_url, &url);
	if (err)
		goto out;

	double deadline =
	    g->give_up_after > 0 ? mono_now() + g->give_up_after : 0;

	for (int attempt = 1;; attempt++) {
		double wait = gate_wait(g, false);
		if (deadline && mono_now() + wait > deadline) {
			/* Throttled past our time: no request could help. */
			resp->status = 429;
			give_up(g, 0, resp, attempt - 1, ", throttled past it");
			break;
		}
		if (sleep_s(g, wait)) {
			err = -ESHUTDOWN;
			break;
		}
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
		    .max_body = GRAPH_MAX_BODY,
		    .timeout_ms = ms_left(deadline, REQUEST_TIMEOUT_MS),
		};
		atomic_fetch_add(&g->requests, 1);
		err = http_perform(g->http, &req, resp);
		count_request(g, graph_route_of(url.data), err, resp->status);
		int last = attempt >= g->max_attempts;

		if (!err && token_rejected(resp) && !auth_retried) {
			log_info("graph: 401 (request-id %s): refreshing the "
				 "token and retrying once",
				 resp->request_id ? resp->request_id : "-");
			auth_retried = 1;
			atomic_fetch_add(&g->auth_retries, 1);
			auth_invalidate(g->auth, token.data);
			attempt--; /* the auth retry does not count */
			continue;
		}
		if (!err && (resp->status == 429 || resp->status == 503) &&
		    !last) {
			/* The gate closes for everyone, even when this caller
			 * then gives up rather than wait (at the loop's top).
			 */
			throttled(g, resp, attempt, false);
			continue;
		}
		if (((!err && resp->status >= 500) ||
		     (err && http_error_is_transient(err))) &&
		    !last) {
			wait = backoff(g, attempt);
			if (deadline) {
				/* A shorter wait, so a last attempt still
				 * fits: the request fails at its deadline,
				 * not a whole backoff before it. */
				double left = deadline - mono_now();
				if (left < LAST_ATTEMPT_MIN) {
					give_up(g, err, resp, attempt, "");
					break;
				}
				if (wait > left - LAST_ATTEMPT_MIN)
					wait = left - LAST_ATTEMPT_MIN;
			}
			if (err)
				log_debug("graph: %s; retrying", resp->error);
			atomic_fetch_add(&g->retries, 1);
			sleep_s(g, wait);
			continue;
		}
		if (err && err != -ESHUTDOWN)
			log_msg(failure_level(g), "graph: request failed: %s",
				resp->error);
		break;
	}
	if (!err && resp->status < 400) {
		pthread_mutex_lock(&g->lock);
		g->throttle_logged = 0;
		g->failure_logged = 0;
		pthread_mutex_unlock(&g->lock);
	}
out:
	buf_release(&url);
	buf_release(&token);
	buf_release(&authz);
	return err;
}

struct download_sink {
	struct http_response *resp;
	http_sink_fn sink;
	void *ctx;
};

static int download_body(void *ctx, const char *data, size_t len)
{
	struct download_sink *d = ctx;

	if (d->resp->status != 200 && d->resp->status != 206)
		return 0; /* an error page: never content */
	return d->sink(d->ctx, data, len);
}

int graph_download_until(struct graph *g, const char *url,
			 unsigned long long offset, unsigned long long length,
			 double deadline, http_sink_fn sink, void *sink_ctx,
			 struct http_response *resp)
{
	struct download_sink d = {resp, sink, sink_ctx};
	char range[64];
	struct http_header hdr[1];
	size_t nhdr = 0;

	if (length)
		snprintf(range, sizeof(range), "bytes=%llu-%llu", offset,
			 offset + length - 1);
	else
		snprintf(range, sizeof(range), "bytes=%llu-", offset);
	if (length || offset) {
		hdr[0].name = "Range";
		hdr[0].value = range;
		nhdr = 1;
	}
	struct http_request req = {
	    .url = url,
	    .headers = hdr,
	    .nheaders = nhdr,
	    .sink = download_body,
	    .sink_ctx = &d,
	};
	double wait = gate_wait(g, true);
	if (deadline && mono_now() + wait > deadline) {
		resp->status = 0;
		snprintf(resp->error, sizeof(resp->error),
			 "downloads paused for %.0f s more by the service's "
			 "Retry-After",
			 wait);
		return -ETIMEDOUT;
	}
	if (sleep_s(g, wait))
		return -ESHUTDOWN;
	req.timeout_ms = ms_left(deadline, 0);
	int err = http_perform(g->http, &req, resp);
	if (err == -EINVAL) {
		/* Never the URL itself: it is the credential. */
		char *o = http_url_origin(url);
		log_warn("download: refusing the download URL on %s: %s",
			 o ? o : "(unparsable)", resp->error);
		free(o);
	}
	count_request(g, GRAPH_ROUTE_DOWNLOAD, err, resp->status);
	if (!err && (resp->status == 429 || resp->status == 503))
		throttled(g, resp, 1, true);
	if (!err && resp->status >= 200 && resp->status < 300) {
		pthread_mutex_lock(&g->lock);
		g->download_throttle_logged = 0;
		pthread_mutex_unlock(&g->lock);
	}
	return err;
}

int graph_download(struct graph *g, const char *url, unsigned long long offset,
		   unsigned long long length, http_sink_fn sink, void *sink_ctx,
		   struct http_response *resp)
{
	double deadline =
	    g->give_up_after > 0 ? mono_now() + g->give_up_after : 0;

	return graph_download_until(g, url, offset, length, deadline, sink,
				    sink_ctx, resp);
}

int graph_download_range(const struct http_response *resp, long long *first,
			 long long *total)
{
	struct http_content_range cr;
	int err = http_content_range_parse(resp->content_range, &cr);

	*first = cr.first;
	*total = cr.total;
	return err;
}

void graph_get_stats(struct graph *g, struct graph_stats *out)
{
	out->requests = atomic_load(&g->requests);
	out->auth_retries = atomic_load(&g->auth_retries);
	out->throttles = atomic_load(&g->throttles);
	out->retries = atomic_load(&g->retries);
	pthread_mutex_lock(&g->lock);
	out->throttled_seconds = g->throttled_seconds;
	pthread_mutex_unlock(&g->lock);
	struct auth_stats as = {0};
	if (g->auth)
		auth_get_stats(g->auth, &as);
	out->token_requests = as.token_requests;
	out->token_failures = as.token_failures;
	out->token_expires_at = as.expires_at;
}
