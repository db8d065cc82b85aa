/* SPDX-License-Identifier: MIT */
/*
 * The metrics and probe server, on libmicrohttpd (Debian's libmicrohttpd12):
 * HTTP parsing, per-connection threads and timeouts are its job, so none
 * of it is written here. What is ours: binding before the daemon forks (a
 * taken port fails the mount), the GET/HEAD-only policy, and the limits.
 *
 * Why a thread per connection: a handler may block (a scrape reads the
 * content store's counters under its lock); on its own thread it delays
 * nobody else, and an idle or trickling client costs one sleeping thread
 * until HTTPD_IDLE_SECONDS pass. HTTPD_MAX_CONNECTIONS bounds the threads.
 */
#include "config.h"

#include "metrics/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

#define MAX_BODY	   (4u << 20)
#define REQUEST_HEAD_BYTES (16u << 10)
/* Address space per connection thread; only the pages a handler touches
 * cost memory. Room for sqlite under the sanitizers. */
#define THREAD_STACK_BYTES (1u << 20)

struct httpd {
	int listen_fd; /* ours until the daemon takes it */
	struct MHD_Daemon *daemon;
	int port;
	httpd_handler_fn handler;
	void *ctx;
};

int httpd_parse_addr(const char *addr, struct sockaddr_storage *ss,
		     socklen_t *len)
{
	char host[128];
	const char *colon, *port_s;

	memset(ss, 0, sizeof(*ss));
	if (!addr || !*addr)
		return -EINVAL;
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (!end || end[1] != ':' ||
		    (size_t)(end - addr - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr + 1, (size_t)(end - addr - 1));
		host[end - addr - 1] = '\0';
		port_s = end + 2;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof(host) ||
		    memchr(addr, ':', (size_t)(colon - addr)))
			return -EINVAL; /* bare IPv6 needs brackets */
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
		port_s = colon + 1;
	}
	char *end;
	errno = 0;
	long port = strtol(port_s, &end, 10);
	if (!*port_s || *end || errno || port < 0 || port > 65535)
		return -EINVAL;
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (!host[0]) {
		v4->sin_family = AF_INET;
		v4->sin_addr.s_addr = htonl(INADDR_ANY);
		v4->sin_port = htons((uint16_t)port);
		*len = sizeof(*v4);
	} else if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*v6);
	} else {
		return -EINVAL; /* names would need DNS at mount time */
	}
	return 0;
}

static enum MHD_Result respond(struct MHD_Connection *conn, int status,
			       const char *type, const char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret = MHD_NO;

	if (!r)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) ==
		MHD_YES &&
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
				    "no-store") == MHD_YES &&
	    /* One request per connection: probes open one each anyway,
	     * and a kept-alive idle connection would hold a thread. */
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") ==
		MHD_YES &&
	    (status != MHD_HTTP_METHOD_NOT_ALLOWED ||
	     MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") ==
		 MHD_YES))
		ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* libmicrohttpd calls this when a request's head has arrived (and again for
 * body data, which GET and HEAD have none of). HEAD answers drop the body
 * themselves. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct httpd *h = cls;
	static const char not_allowed[] = "method not allowed\n";

	(void)version;
	(void)upload_data;
	(void)req_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
			       not_allowed, sizeof(not_allowed) - 1);
	if (*upload_data_size)
		return MHD_NO; /* a GET with a body: drop the connection */

	struct buf body;
	const char *type = "text/plain; charset=utf-8";
	buf_init(&body, MAX_BODY);
	int status = h->handler(h->ctx, url, &body, &type);
	enum MHD_Result ret =
	    respond(conn, status, type, body.data ? body.data : "", body.len);
	buf_release(&body);
	return ret;
}

/* libmicrohttpd's own complaints (a connection refused at the cap, a
 * malformed request) are a client's doing: debug lines. */
__attribute__((format(printf, 2, 0))) static void
on_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (log_enabled(LOG_DEBUG))
		log_vmsg(LOG_DEBUG, fmt, ap);
}

int httpd_open(const char *addr, httpd_handler_fn handler, void *ctx,
	       struct httpd **out)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int err = httpd_parse_addr(addr, &ss, &sslen);
	struct httpd *h = NULL;

	*out = NULL;
	if (err)
		return err;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->listen_fd = -1;
	h->handler = handler;
	h->ctx = ctx;
	h->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (h->listen_fd < 0 ||
	    setsockopt(h->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
		       sizeof(one)) != 0 ||
	    bind(h->listen_fd, (struct sockaddr *)&ss, sslen) != 0 ||
	    listen(h->listen_fd, 64) != 0) {
		err = -errno;
		goto fail;
	}
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	if (getsockname(h->listen_fd, (struct sockaddr *)&bound, &blen) != 0) {
		err = -errno;
		goto fail;
	}
	h->port = ntohs(bound.ss_family == AF_INET6
			    ? ((struct sockaddr_in6 *)&bound)->sin6_port
			    : ((struct sockaddr_in *)&bound)->sin_port);
	*out = h;
	return 0;
fail:
	httpd_stop(h);
	return err;
}

int httpd_serve(struct httpd *h)
{
	if (h->daemon)
		return 0;
	h->daemon = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD, 0,
	    NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, h->listen_fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTPD_MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTPD_IDLE_SECONDS,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)REQUEST_HEAD_BYTES,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK_BYTES,
	    MHD_OPTION_EXTERNAL_LOGGER, on_log, NULL, MHD_OPTION_END);
	if (!h->daemon)
		return -EIO;
	h->listen_fd = -1; /* the daemon closes it when it stops */
	return 0;
}

int httpd_port(const struct httpd *h)
{
	return h ? h->port : -1;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	if (h->daemon)
		MHD_stop_daemon(h->daemon);
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	free(h);
}
