/* SPDX-License-Identifier: MIT */
/*
 * Graph request core.
 *
 * Throttle gate: g->not_before (monotonic seconds) is shared by all threads;
 * every attempt first sleeps until it has passed, and a 429/503 moves it to
 * now + Retry-After. So one throttled call pauses the whole client, which is
 * what SharePoint asks of well-behaved callers.
 * Lock order: g->lock is a leaf; never held across I/O or sleeps.
 */
#include "config.h"

#include "graph/graph.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <json-c/json.h>
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
#include "base/log.h"
#include "http/content_range.h"
#include "http/retry_after.h"

struct graph {
	struct http *http;
	struct auth *auth;
	char *base_url;
	int max_attempts;
	double backoff_base;
	double give_up_after;
	pthread_mutex_t lock; /* guards not_before, stats.throttled_seconds,
				 throttle_logged, failure_logged */
	double not_before;    /* monotonic: no Graph request before this */
	int throttle_logged;
	int failure_logged; /* an outage is warned of once, until a success */
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
static void sleep_s(struct graph *g, double s)
{
	http_sleep(g->http, s);
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
	pthread_mutex_init(&g->lock, NULL);
	*err = 0;
	return g;
}

void graph_free(struct graph *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	free(g->base_url);
	free(g);
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
	if (!body || !len || len > INT32_MAX || !(tok = json_tokener_new()))
		return;
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

static double gate_wait(struct graph *g)
{
	pthread_mutex_lock(&g->lock);
	double wait = g->not_before - mono_now();
	pthread_mutex_unlock(&g->lock);
	return wait > 0 ? wait : 0;
}

static double backoff(const struct graph *g, int attempt)
{
	return g->backoff_base * (1 << (attempt < 6 ? attempt - 1 : 5)) *
	       jitter();
}

/* Whether a retry after wait seconds would end past the request's time:
 * a reader waiting on a listing gets its EIO within read_timeout, as a
 * reader waiting on bytes does, instead of after every backoff step. */
static bool out_of_time(const struct graph *g, double deadline, double wait)
{
	return g->give_up_after > 0 && mono_now() + wait > deadline;
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

/* A 429/503: close the gate for everyone until Retry-After has passed. */
static void throttled(struct graph *g, const struct http_response *resp,
		      int attempt)
{
	double ra;

	if (http_retry_after_parse(resp->retry_after, time(NULL), &ra) != 0) {
		/* No usable Retry-After: back off exponentially from 2 s. */
		ra = 2.0;
		for (int i = 1; i < attempt && ra < 60; i++)
			ra *= 2;
	}
	atomic_fetch_add(&g->throttles, 1);
	pthread_mutex_lock(&g->lock);
	double until = mono_now() + ra;
	if (until > g->not_before)
		g->not_before = until;
	g->throttled_seconds += ra;
	int first = !g->throttle_logged;
	g->throttle_logged = 1;
	pthread_mutex_unlock(&g->lock);
	if (first)
		log_warn("graph: throttled (HTTP %ld, Retry-After %s): pausing "
			 "all Graph requests for %.0f s",
			 resp->status,
			 resp->retry_after ? resp->retry_after : "-", ra);
	else
		log_debug("graph: throttled again, pausing %.0f s", ra);
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
	if (strncmp(path_or_url, "https://", 8) == 0 ||
	    strncmp(path_or_url, "http://", 7) == 0)
		err = buf_append_str(&url, path_or_url);
	else
		err =
		    buf_appendf(&url, "%s%s%s", g->base_url,
				path_or_url[0] == '/' ? "" : "/", path_or_url);
	if (err)
		goto out;

	double deadline = mono_now() + g->give_up_after;
	double wait = 0;

	for (int attempt = 1;; attempt++) {
		sleep_s(g, gate_wait(g));
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
		    .max_body = 64u << 20,
		    .timeout_ms = 120000,
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
			 * then gives up rather than wait. */
			throttled(g, resp, attempt);
			wait = gate_wait(g);
			if (!out_of_time(g, deadline, wait))
				continue;
			goto give_up;
		}
		if (((!err && resp->status >= 500) ||
		     (err && http_error_is_transient(err))) &&
		    !last) {
			wait = backoff(g, attempt);
			if (out_of_time(g, deadline, wait))
				goto give_up;
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
	give_up:
		if (err)
			log_msg(failure_level(g),
				"graph: giving up within read_timeout (%.0f s, "
				"%d attempts): %s",
				g->give_up_after, attempt, resp->error);
		else
			log_msg(failure_level(g),
				"graph: giving up within read_timeout (%.0f s, "
				"%d attempts): HTTP %ld",
				g->give_up_after, attempt, resp->status);
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

int graph_download(struct graph *g, const char *url, unsigned long long offset,
		   unsigned long long length, http_sink_fn sink, void *sink_ctx,
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
	sleep_s(g, gate_wait(g));
	int err = http_perform(g->http, &req, resp);
	count_request(g, GRAPH_ROUTE_DOWNLOAD, err, resp->status);
	if (!err && (resp->status == 429 || resp->status == 503))
		throttled(g, resp, 1);
	return err;
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
