/* SPDX-License-Identifier: MIT */
/*
 * Small HTTP server for metrics and probes. One thread polls the listening
 * socket and a stop pipe; each accepted connection gets REQUEST_TIMEOUT_MS
 * to send at most MAX_REQUEST bytes of head, one answer, and is closed. A
 * slow or hostile client therefore delays scrapes by a bounded time and can
 * never grow memory.
 */
#include "config.h"

#include "metrics/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

#define MAX_REQUEST	   8192
#define MAX_PATH	   1024
#define REQUEST_TIMEOUT_MS 2000
#define MAX_BODY	   (4u << 20)

struct httpd {
	int listen_fd;
	int stop_pipe[2];
	pthread_t thread;
	bool running;
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

enum httpd_parse_result httpd_parse_request(const char *data, size_t len,
					    char *path, size_t cap,
					    int *head_only)
{
	const char *end = NULL;

	for (size_t i = 0; i + 3 < len; i++)
		if (memcmp(data + i, "\r\n\r\n", 4) == 0) {
			end = data + i;
			break;
		}
	if (!end) {
		/* Tolerate bare LF line ends, as many clients' tests send. */
		for (size_t i = 0; i + 1 < len; i++)
			if (data[i] == '\n' && data[i + 1] == '\n') {
				end = data + i;
				break;
			}
	}
	if (!end)
		return len >= MAX_REQUEST ? HTTPD_REQ_BAD
					  : HTTPD_REQ_INCOMPLETE;
	/* end is the blank line's first byte; its '\n' ends the request
	 * line when there are no header lines. */
	const char *line_end = memchr(data, '\n', (size_t)(end - data) + 2);
	if (!line_end)
		return HTTPD_REQ_BAD;
	size_t line_len = (size_t)(line_end - data);
	if (line_len && data[line_len - 1] == '\r')
		line_len--;
	const char *sp1 = memchr(data, ' ', line_len);
	if (!sp1)
		return HTTPD_REQ_BAD;
	const char *target = sp1 + 1;
	const char *sp2 =
	    memchr(target, ' ', line_len - (size_t)(target - data));
	if (!sp2 || sp2 == target)
		return HTTPD_REQ_BAD;
	const char *version = sp2 + 1;
	size_t vlen = line_len - (size_t)(version - data);
	if (vlen != 8 || memcmp(version, "HTTP/1.", 7) != 0 ||
	    (version[7] != '0' && version[7] != '1'))
		return HTTPD_REQ_BAD;
	for (const char *p = target; p < sp2; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return HTTPD_REQ_BAD;
	if (*target != '/')
		return HTTPD_REQ_BAD;
	size_t mlen = (size_t)(sp1 - data);
	if (mlen == 3 && memcmp(data, "GET", 3) == 0)
		*head_only = 0;
	else if (mlen == 4 && memcmp(data, "HEAD", 4) == 0)
		*head_only = 1;
	else
		return HTTPD_REQ_METHOD;
	const char *q = memchr(target, '?', (size_t)(sp2 - target));
	size_t plen = (size_t)((q ? q : sp2) - target);
	if (plen >= cap)
		return HTTPD_REQ_TOO_LONG;
	memcpy(path, target, plen);
	path[plen] = '\0';
	return HTTPD_REQ_OK;
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 414:
		return "URI Too Long";
	case 503:
		return "Service Unavailable";
	default:
		return status < 400 ? "OK" : "Error";
	}
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the client left; nothing to tell anyone */
		p += w;
		n -= (size_t)w;
	}
}

static void respond(int fd, int status, const char *type, const char *body,
		    size_t len, bool head_only)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\nCache-Control: no-store\r\n"
			 "Connection: close\r\n%s\r\n",
			 status, reason(status), type, len,
			 status == 405 ? "Allow: GET, HEAD\r\n" : "");
	write_all(fd, head, (size_t)n);
	if (!head_only)
		write_all(fd, body, len);
}

static void serve_one(struct httpd *h, int fd)
{
	char req[MAX_REQUEST], path[MAX_PATH];
	size_t got = 0;
	int head_only = 0;
	enum httpd_parse_result pr = HTTPD_REQ_INCOMPLETE;
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (pr == HTTPD_REQ_INCOMPLETE) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = REQUEST_TIMEOUT_MS -
			    (long)((now.tv_sec - t0.tv_sec) * 1000 +
				   (now.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return; /* too slow: just close */
		ssize_t r = read(fd, req + got, sizeof(req) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		got += (size_t)r;
		pr = httpd_parse_request(req, got, path, sizeof(path),
					 &head_only);
	}
	switch (pr) {
	case HTTPD_REQ_OK:
		break;
	case HTTPD_REQ_METHOD:
		respond(fd, 405, "text/plain", "method not allowed\n", 19,
			false);
		return;
	case HTTPD_REQ_TOO_LONG:
		respond(fd, 414, "text/plain", "path too long\n", 14, false);
		return;
	default:
		respond(fd, 400, "text/plain", "bad request\n", 12, false);
		return;
	}
	struct buf body;
	const char *type = "text/plain; charset=utf-8";
	buf_init(&body, MAX_BODY);
	int status = h->handler(h->ctx, path, &body, &type);
	respond(fd, status, type, body.data ? body.data : "", body.len,
		head_only);
	buf_release(&body);
}

static void *serve(void *arg)
{
	struct httpd *h = arg;

	for (;;) {
		struct pollfd p[2] = {
		    {.fd = h->listen_fd, .events = POLLIN},
		    {.fd = h->stop_pipe[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("metrics: poll: %s", strerror(errno));
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue; /* the client gave up meanwhile, or EMFILE */
		serve_one(h, fd);
		close(fd);
	}
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
	h->stop_pipe[0] = h->stop_pipe[1] = -1;
	h->handler = handler;
	h->ctx = ctx;
	h->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (h->listen_fd < 0 ||
	    setsockopt(h->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
		       sizeof(one)) != 0 ||
	    bind(h->listen_fd, (struct sockaddr *)&ss, sslen) != 0 ||
	    listen(h->listen_fd, 16) != 0 ||
	    pipe2(h->stop_pipe, O_CLOEXEC) != 0) {
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
	if (h->running)
		return 0;
	int err = -pthread_create(&h->thread, NULL, serve, h);
	h->running = err == 0;
	return err;
}

int httpd_port(const struct httpd *h)
{
	return h ? h->port : -1;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	if (h->running) {
		write_all(h->stop_pipe[1], "x", 1);
		pthread_join(h->thread, NULL);
	}
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	if (h->stop_pipe[0] >= 0)
		close(h->stop_pipe[0]);
	if (h->stop_pipe[1] >= 0)
		close(h->stop_pipe[1]);
	free(h);
}
