/* SPDX-License-Identifier: MIT */
#ifndef SPFS_METRICS_HTTPD_H
#define SPFS_METRICS_HTTPD_H

/*
 * A deliberately small HTTP/1.1 server for Prometheus scrapes and probes:
 * GET and HEAD only, one request per connection, one connection at a time,
 * bounded request size and time. It serves what a handler renders; it knows
 * nothing of spfs. Not meant for untrusted networks beyond a scraper: bind
 * it to loopback or a pod IP.
 *
 * Thread safety: httpd_open/serve/stop from one thread; the handler runs on
 * the server's own thread.
 */

#include <stddef.h>
#include <sys/socket.h>

#include "base/buf.h"

struct httpd;

/* Fills body and *content_type for path (no query string); returns the HTTP
 * status (200, 404, 503...). */
typedef int (*httpd_handler_fn)(void *ctx, const char *path, struct buf *body,
				const char **content_type);

/* Binds addr ("HOST:PORT", "[V6]:PORT" or ":PORT" for all addresses; port 0
 * picks a free one), so a mount fails early on a taken port. 0 or -errno. */
int httpd_open(const char *addr, httpd_handler_fn handler, void *ctx,
	       struct httpd **out);
/* Serves on a thread of its own (start it after any fork). 0 or -errno. */
int httpd_serve(struct httpd *h);
/* The bound port (useful with port 0). */
int httpd_port(const struct httpd *h);
void httpd_stop(struct httpd *h);

/* Parses "HOST:PORT" forms as above into a socket address. 0 or -EINVAL. */
int httpd_parse_addr(const char *addr, struct sockaddr_storage *ss,
		     socklen_t *len);

enum httpd_parse_result {
	HTTPD_REQ_OK = 0,
	HTTPD_REQ_INCOMPLETE = 1, /* no blank line yet */
	HTTPD_REQ_BAD = 2,	  /* 400 */
	HTTPD_REQ_METHOD = 3,	  /* 405: not GET or HEAD */
	HTTPD_REQ_TOO_LONG = 4,	  /* 414: the path does not fit */
};

/* Parses a request head from data[0..len): the method, and the path without
 * its query string into path (NUL-terminated, at most cap - 1 bytes).
 * *head_only is set for HEAD. Exposed for tests and fuzzing. */
enum httpd_parse_result httpd_parse_request(const char *data, size_t len,
					    char *path, size_t cap,
					    int *head_only);

#endif
