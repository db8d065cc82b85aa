/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics/httpd.h"

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

/* The server's handler: /hello answers at once; /block waits until the test
 * opens the gate, counting the handlers waiting (several run at once). */
struct served {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
	int blocked;
	bool open;
};

static struct served served = {PTHREAD_MUTEX_INITIALIZER,
			       PTHREAD_COND_INITIALIZER, 0, 0, false};

static int handler(void *ctx, const char *path, struct buf *body,
		   const char **type)
{
	struct served *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->calls++;
	if (strcmp(path, "/block") == 0) {
		s->blocked++;
		pthread_cond_broadcast(&s->cond);
		while (!s->open)
			pthread_cond_wait(&s->cond, &s->lock);
		s->blocked--;
	}
	pthread_mutex_unlock(&s->lock);
	*type = "text/plain";
	if (strcmp(path, "/hello") == 0 || strcmp(path, "/block") == 0) {
		buf_append_str(body, "hello\n");
		return 200;
	}
	return 404;
}

static void gate(bool open)
{
	pthread_mutex_lock(&served.lock);
	served.open = open;
	pthread_cond_broadcast(&served.cond);
	pthread_mutex_unlock(&served.lock);
}

/* Waits (at most 20 s) until n handlers wait behind the gate. */
static bool wait_blocked(int n)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&served.lock);
	while (served.blocked < n &&
	       pthread_cond_timedwait(&served.cond, &served.lock, &until) == 0)
		;
	ok = served.blocked >= n;
	pthread_mutex_unlock(&served.lock);
	return ok;
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	struct timeval tv = {10, 0};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static size_t read_all(int fd, char *out, size_t cap)
{
	size_t got = 0;

	for (;;) {
		ssize_t r = read(fd, out + got, cap - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	out[got] = '\0';
	return got;
}

/* Sends req to the server on port and returns the whole answer in out. */
static size_t exchange(int port, const char *req, char *out, size_t cap)
{
	int fd = connect_to(port);

	if (req)
		assert_int_equal(write(fd, req, strlen(req)),
				 (ssize_t)strlen(req));
	size_t got = read_all(fd, out, cap);
	close(fd);
	return got;
}

static void test_serves_over_a_socket(void **state)
{
	struct httpd *h;
	char out[4096];

	(void)state;
	served.calls = 0;
	assert_int_equal(httpd_open("127.0.0.1:0", handler, &served, &h), 0);
	int port = httpd_port(h);
	assert_true(port > 0);
	/* Bound before serving: a second server on the port fails. */
	struct httpd *other;
	char addr[32];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_int_equal(httpd_open(addr, handler, &served, &other),
			 -EADDRINUSE);
	assert_int_equal(httpd_serve(h), 0);

	exchange(port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", out,
		 sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(out, "Content-Length: 6\r\n"));
	assert_non_null(strstr(out, "Cache-Control: no-store\r\n"));
	assert_non_null(strstr(out, "\r\n\r\nhello\n"));
	exchange(port, "HEAD /hello?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", out,
		 sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(out, "Content-Length: 6\r\n"));
	assert_null(strstr(out, "hello\n"));
	exchange(port, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", out,
		 sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 404 "));
	exchange(port, "DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n", out,
		 sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 405 "));
	assert_non_null(strstr(out, "Allow: GET, HEAD\r\n"));
	exchange(port, "garbage\r\n\r\n", out, sizeof(out));
	assert_null(strstr(out, " 200 "));
	/* A client that says nothing is dropped after the idle timeout, and
	 * the server goes on serving. */
	assert_int_equal(exchange(port, NULL, out, sizeof(out)), 0);
	exchange(port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", out,
		 sizeof(out));
	assert_non_null(strstr(out, "hello\n"));
	/* Only complete GET/HEAD requests reach the handler. */
	assert_int_equal(served.calls, 4);
	httpd_stop(h);
}

#define IDLE_CLIENTS 20

struct reconnector {
	int port;
	atomic_bool stop;
	int rounds;
};

/* Connects and hangs up in a loop, sometimes after half a request head:
 * the clients that made the old one-at-a-time server fail every probe. */
static void *reconnect_loop(void *arg)
{
	struct reconnector *r = arg;

	for (r->rounds = 0; r->rounds < 2000 && !atomic_load(&r->stop);
	     r->rounds++) {
		int fd = connect_to(r->port);
		if (r->rounds % 2)
			assert_true(write(fd, "GET /hel", 8) == 8);
		close(fd);
	}
	return NULL;
}

static void test_idle_clients_delay_nobody(void **state)
{
	struct httpd *h;
	char out[4096];
	int idle[IDLE_CLIENTS];
	pthread_t t;

	(void)state;
	assert_int_equal(httpd_open("127.0.0.1:0", handler, &served, &h), 0);
	assert_int_equal(httpd_serve(h), 0);
	int port = httpd_port(h);
	for (int i = 0; i < IDLE_CLIENTS; i++) {
		idle[i] = connect_to(port);
		if (i % 2) /* half a head, then nothing */
			assert_int_equal(
			    write(idle[i], "GET /hello HTTP/1.1\r\n", 21), 21);
	}
	struct reconnector r = {.port = port};
	assert_int_equal(pthread_create(&t, NULL, reconnect_loop, &r), 0);
	/* A handler that blocks delays nobody either. */
	gate(false);
	int slow = connect_to(port);
	const char *block = "GET /block HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(write(slow, block, strlen(block)),
			 (ssize_t)strlen(block));
	assert_true(wait_blocked(1));

	exchange(port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", out,
		 sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	/* Answered while every idle client was still connected, i.e. before
	 * the first of them could have timed out: none of them delayed it. */
	for (int i = 0; i < IDLE_CLIENTS; i++) {
		char c;
		assert_int_equal(recv(idle[i], &c, 1, MSG_DONTWAIT), -1);
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	}
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	assert_true(r.rounds > 0);
	gate(true);
	read_all(slow, out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	close(slow);
	/* The idle ones are dropped after HTTPD_IDLE_SECONDS. */
	for (int i = 0; i < IDLE_CLIENTS; i++) {
		assert_int_equal(read_all(idle[i], out, sizeof(out)), 0);
		close(idle[i]);
	}
	httpd_stop(h);
}

/* At most HTTPD_MAX_CONNECTIONS at once: one more is closed unanswered, and
 * the server serves again as soon as connections end. */
static void test_connection_cap(void **state)
{
	struct httpd *h;
	char out[4096];
	int fds[HTTPD_MAX_CONNECTIONS];
	const char *block = "GET /block HTTP/1.1\r\nHost: x\r\n\r\n";

	(void)state;
	assert_int_equal(httpd_open("127.0.0.1:0", handler, &served, &h), 0);
	assert_int_equal(httpd_serve(h), 0);
	int port = httpd_port(h);
	gate(false);
	for (int i = 0; i < HTTPD_MAX_CONNECTIONS; i++) {
		fds[i] = connect_to(port);
		assert_int_equal(write(fds[i], block, strlen(block)),
				 (ssize_t)strlen(block));
	}
	/* Every connection is in a handler: all were accepted. */
	assert_true(wait_blocked(HTTPD_MAX_CONNECTIONS));
	assert_int_equal(exchange(port,
				  "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", out,
				  sizeof(out)),
			 0);
	gate(true);
	for (int i = 0; i < HTTPD_MAX_CONNECTIONS; i++) {
		read_all(fds[i], out, sizeof(out));
		assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
		close(fds[i]);
	}
	/* The server counts a connection until its thread has finished:
	 * give the threads a moment (at most 10 s). */
	for (int i = 0; i < 100; i++) {
		exchange(port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", out,
			 sizeof(out));
		if (strstr(out, "HTTP/1.1 200 OK\r\n"))
			break;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	httpd_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_addresses),
	    cmocka_unit_test(test_serves_over_a_socket),
	    cmocka_unit_test(test_idle_clients_delay_nobody),
	    cmocka_unit_test(test_connection_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
