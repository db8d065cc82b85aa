/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics/httpd.h"

static enum httpd_parse_result parse(const char *req, char *path, int *head)
{
	return httpd_parse_request(req, strlen(req), path, 32, head);
}

static void test_parse_requests(void **state)
{
	char path[32];
	int head = -1;

	(void)state;
	assert_int_equal(
	    parse("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", path, &head),
	    HTTPD_REQ_OK);
	assert_string_equal(path, "/metrics");
	assert_int_equal(head, 0);
	assert_int_equal(
	    parse("HEAD /ready?verbose=1 HTTP/1.0\r\n\r\n", path, &head),
	    HTTPD_REQ_OK);
	assert_string_equal(path, "/ready");
	assert_int_equal(head, 1);
	assert_int_equal(parse("GET /metrics HTTP/1.1\n\n", path, &head),
			 HTTPD_REQ_OK);
	/* Not there yet: a scraper's head arriving in pieces. */
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost:", path, &head),
			 HTTPD_REQ_INCOMPLETE);
	assert_int_equal(parse("POST /metrics HTTP/1.1\r\n\r\n", path, &head),
			 HTTPD_REQ_METHOD);
	assert_int_equal(parse("GET metrics HTTP/1.1\r\n\r\n", path, &head),
			 HTTPD_REQ_BAD);
	assert_int_equal(parse("GET /a b HTTP/1.1\r\n\r\n", path, &head),
			 HTTPD_REQ_BAD);
	assert_int_equal(parse("GET /a HTTP/2\r\n\r\n", path, &head),
			 HTTPD_REQ_BAD);
	assert_int_equal(parse("GET  HTTP/1.1\r\n\r\n", path, &head),
			 HTTPD_REQ_BAD);
	assert_int_equal(parse("GET /\x01 HTTP/1.1\r\n\r\n", path, &head),
			 HTTPD_REQ_BAD);
	assert_int_equal(parse("GET /a-path-much-longer-than-thirty-two-bytes "
			       "HTTP/1.1\r\n\r\n",
			       path, &head),
			 HTTPD_REQ_TOO_LONG);
}

static void test_parse_addresses(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;

	(void)state;
	assert_int_equal(httpd_parse_addr("127.0.0.1:9464", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9464);
	assert_int_equal(httpd_parse_addr(":9464", &ss, &len), 0);
	assert_int_equal(httpd_parse_addr("localhost:1", &ss, &len), 0);
	assert_int_equal(httpd_parse_addr("[::1]:9464", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(httpd_parse_addr("::1:9464", &ss, &len), -EINVAL);
	assert_int_equal(httpd_parse_addr("127.0.0.1", &ss, &len), -EINVAL);
	assert_int_equal(httpd_parse_addr("127.0.0.1:65536", &ss, &len),
			 -EINVAL);
	assert_int_equal(httpd_parse_addr("127.0.0.1:", &ss, &len), -EINVAL);
	assert_int_equal(httpd_parse_addr("example.com:80", &ss, &len),
			 -EINVAL);
	assert_int_equal(httpd_parse_addr("", &ss, &len), -EINVAL);
}

static int handler(void *ctx, const char *path, struct buf *body,
		   const char **type)
{
	int *calls = ctx;

	(*calls)++;
	*type = "text/plain";
	if (strcmp(path, "/hello") == 0) {
		buf_append_str(body, "hello\n");
		return 200;
	}
	return 404;
}

/* Sends req to the server on port and returns the whole answer in out. */
static size_t exchange(int port, const char *req, char *out, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	struct timeval tv = {5, 0};
	size_t got = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	if (req)
		assert_int_equal(write(fd, req, strlen(req)),
				 (ssize_t)strlen(req));
	for (;;) {
		ssize_t r = read(fd, out + got, cap - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	out[got] = '\0';
	close(fd);
	return got;
}

static void test_serves_over_a_socket(void **state)
{
	struct httpd *h;
	int calls = 0;
	char out[4096];

	(void)state;
	assert_int_equal(httpd_open("127.0.0.1:0", handler, &calls, &h), 0);
	int port = httpd_port(h);
	assert_true(port > 0);
	/* Bound before serving: a second server on the port fails. */
	struct httpd *other;
	char addr[32];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_int_equal(httpd_open(addr, handler, &calls, &other),
			 -EADDRINUSE);
	assert_int_equal(httpd_serve(h), 0);

	exchange(port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", out,
		 sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(out, "Content-Length: 6\r\n"));
	assert_non_null(strstr(out, "\r\n\r\nhello\n"));
	exchange(port, "HEAD /hello HTTP/1.1\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "Content-Length: 6\r\n"));
	assert_null(strstr(out, "hello\n"));
	exchange(port, "GET /nothing HTTP/1.1\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 404 "));
	exchange(port, "DELETE /hello HTTP/1.1\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 405 "));
	assert_non_null(strstr(out, "Allow: GET, HEAD\r\n"));
	exchange(port, "garbage\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 400 "));
	/* A client that says nothing is dropped after the timeout, and the
	 * server goes on serving. */
	assert_int_equal(exchange(port, NULL, out, sizeof(out)), 0);
	exchange(port, "GET /hello HTTP/1.1\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "hello\n"));
	assert_int_equal(calls, 4);
	httpd_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_requests),
	    cmocka_unit_test(test_parse_addresses),
	    cmocka_unit_test(test_serves_over_a_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
