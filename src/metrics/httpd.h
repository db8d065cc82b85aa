/* SPDX-License-Identifier: MIT */
#ifndef SPFS_METRICS_HTTPD_H
#define SPFS_METRICS_HTTPD_H

/*
 * The HTTP server for Prometheus scrapes and Kubernetes probes: GET and
 * HEAD only, each connection served on its own thread (libmicrohttpd), so a
 * slow, idle or hostile client never delays another one. Each connection
 * is dropped after HTTPD_IDLE_SECONDS without progress, at most
 * HTTPD_MAX_CONNECTIONS are open at once (more are closed at accept), and
 * a request head is bounded. It serves what a handler renders; it knows
 * nothing of spfs.
 *
 * Thread safety: httpd_open/serve/stop from one thread; the handler runs on
 * the connections' threads, several at a time.
 */

#include <sys/socket.h>

#include "base/buf.h"

#define HTTPD_MAX_CONNECTIONS 64
#define HTTPD_IDLE_SECONDS    5

struct httpd;

/* Fills body and *content_type for path (no query string); returns the HTTP
 * status (200, 404, 503...). May run on several threads at once. */
typedef int (*httpd_handler_fn)(void *ctx, const char *path, struct buf *body,
				const char **content_type);

/* Binds addr ("HOST:PORT", "[V6]:PORT" or ":PORT" for all addresses; port 0
 * picks a free one), so a mount fails early on a taken port. 0 or -errno. */
int httpd_open(const char *addr, httpd_handler_fn handler, void *ctx,
	       struct httpd **out);
/* Starts serving on threads of its own (start it after any fork). 0 or
 * -errno. */
int httpd_serve(struct httpd *h);
/* The bound port (useful with port 0). */
int httpd_port(const struct httpd *h);
/* Stops serving (waits for handlers that run) and frees h; NULL is fine. */
void httpd_stop(struct httpd *h);

/* Parses "HOST:PORT" forms as above into a socket address. 0 or -EINVAL. */
int httpd_parse_addr(const char *addr, struct sockaddr_storage *ss,
		     socklen_t *len);

#endif
