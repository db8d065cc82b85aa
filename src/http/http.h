/* SPDX-License-Identifier: MIT */
#ifndef SPFS_HTTP_HTTP_H
#define SPFS_HTTP_HTTP_H

/*
 * HTTP transport over libcurl. One `struct http` per process: it owns a
 * CURLSH (DNS, TLS sessions and connections shared by every thread) and
 * gives each thread its own easy handle, so requests from any thread reuse
 * warm connections. TLS is always verified; plain http:// is refused unless
 * the caller allowed it for tests. No JSON here and no retry policy: callers
 * decide what a status means.
 *
 * Never logs header values or bodies (tokens and file content travel here).
 */

#include <stddef.h>

#include "base/buf.h"

struct http;

struct http_config {
	const char *cafile;	 /* PEM trust store; NULL = the system's */
	const char *user_agent;	 /* NULL = "ISV|spfs|spfs/VERSION" */
	long connect_timeout_ms; /* 0 = 10 s */
	long
	    low_speed_time_s; /* abort a transfer stalled this long; 0 = 30 s */
	int allow_http;	      /* accept http:// URLs (tests only) */
};

/* Returns NULL and *err = -ENOMEM or -EINVAL (curl could not be set up). */
struct http *http_new(const struct http_config *cfg, int *err);
void http_free(struct http *h);

struct http_header {
	const char *name;
	const char *value; /* may be secret: never logged */
};

/* Called with response body bytes as they arrive; return 0 to go on or a
 * negative errno to abort the transfer with that error. By the first call,
 * the response's status, content_length and headers are already set. */
typedef int (*http_sink_fn)(void *ctx, const char *data, size_t len);

struct http_request {
	const char *method; /* "GET" (default when NULL), "POST", "HEAD" */
	const char *url;    /* used byte for byte */
	const struct http_header *headers;
	size_t nheaders;
	const char *body; /* POST body, may be secret */
	size_t body_len;
	size_t max_body;   /* response bytes kept in resp->body; 0 = 4 MiB */
	int secret_body;   /* response body holds a secret: wipe on release */
	http_sink_fn sink; /* stream the body here instead of resp->body */
	void *sink_ctx;
	long timeout_ms; /* whole request; 0 = none (the stall timeout applies)
			  */
	int allow_http;	 /* this request may use http:// (IMDS is plain HTTP) */
	int no_proxy;	 /* never through a proxy, whatever the environment
			    says (IMDS: the link-local service, plain HTTP) */
};

struct http_response {
	long status;		  /* 0 when no response arrived */
	struct buf body;	  /* unless a sink was given */
	long long content_length; /* -1 when absent */
	char *retry_after;	  /* raw header values, NULL when absent */
	char *request_id;
	char *location;
	char *content_range;
	char *content_type;
	char *www_authenticate;
	char *etag;
	char client_request_id[37]; /* the UUID we sent as client-request-id */
	char error[256];	    /* transport error text, "" if none */
};

void http_response_init(struct http_response *resp);
void http_response_release(struct http_response *resp);

/*
 * Performs one request (no retries, redirects not followed).
 * Returns 0 when a response arrived (any status: look at resp->status), or
 * a negative errno for a transport failure, with resp->error saying what:
 *   -EINVAL       malformed URL, or http:// while not allowed
 *   -ECONNREFUSED connection refused / host unreachable / DNS failure
 *   -ETIMEDOUT    connect, stall or request timeout
 *   -ECONNRESET   the peer closed mid-transfer (includes short bodies)
 *   -EPROTO       TLS handshake or certificate verification failure
 *   -EFBIG        response body larger than max_body
 *   -ESHUTDOWN    http_abort() was called
 *   -ENOMEM, -EIO anything else; or the error a sink returned
 */
int http_perform(struct http *h, const struct http_request *req,
		 struct http_response *resp);

/* True for errors worth retrying (connection-level, not TLS or usage). */
int http_error_is_transient(int err);

/*
 * Shutting down: every transfer in flight ends within about a second, and
 * every later http_perform() at once, with -ESHUTDOWN ("shutting down" in
 * resp->error); every http_sleep() returns early. Only an atomic store, so
 * a signal handler may call it. There is no way back.
 */
void http_abort(struct http *h);
/* Sleeps seconds, or less once http_abort() is called: 0, or -ESHUTDOWN.
 * Callers that back off or wait for a gate use it, so that an unmount
 * during an outage is prompt. */
int http_sleep(struct http *h, double seconds);

/*
 * The origin of an absolute http(s) URL as libcurl would connect to it:
 * "scheme://host:port", scheme and host in lower case, the port always
 * given. Parsed by libcurl's own URL parser, so the answer is where a
 * request would go. malloc'd, or NULL for a URL libcurl cannot parse, one
 * with userinfo ("user@"), or no memory.
 */
char *http_url_origin(const char *url);

#endif
