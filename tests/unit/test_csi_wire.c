/* SPDX-License-Identifier: MIT */
/* The plugin <-> mounter messages: round trips, strict decoding, and one
 * real call over a SOCK_SEQPACKET socket. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csi/wire.h"

static void fill(struct csi_volume *v)
{
	csi_volume_init(v);
	v->volume_id = strdup("csi-1");
	v->target = strdup("/var/lib/kubelet/pods/u/volumes/x/mount");
	v->source = strdup("https://contoso.sharepoint.com/sites/Finance");
	v->client_id = strdup("11111111-2222-3333-4444-555555555555");
	v->tenant_id = strdup("contoso.onmicrosoft.com");
	v->namespace_ = strdup("data");
	v->service_account = strdup("reader");
	v->pod_name = strdup("app-1");
	v->options = strdup("cache_size=2G");
	v->token.token = strdup("aa.bb.cc");
	v->token.expires_at = 1795356082;
	v->readonly = true;
	v->ephemeral = true;
}

static void test_publish_round_trip(void **state)
{
	struct mounter_request in, out;
	struct buf text, msg;

	(void)state;
	mounter_request_init(&in);
	mounter_request_init(&out);
	buf_init_secret(&text, WIRE_MAX);
	buf_init(&msg, 1024);
	in.op = MOUNTER_PUBLISH;
	fill(&in.vol);
	assert_int_equal(wire_request_encode(&in, &text), 0);
	assert_int_equal(wire_request_decode(text.data, text.len, &out, &msg),
			 0);
	assert_int_equal(out.op, MOUNTER_PUBLISH);
	assert_string_equal(out.vol.volume_id, in.vol.volume_id);
	assert_string_equal(out.vol.target, in.vol.target);
	assert_string_equal(out.vol.source, in.vol.source);
	assert_string_equal(out.vol.client_id, in.vol.client_id);
	assert_string_equal(out.vol.tenant_id, in.vol.tenant_id);
	assert_string_equal(out.vol.namespace_, in.vol.namespace_);
	assert_string_equal(out.vol.service_account, in.vol.service_account);
	assert_string_equal(out.vol.pod_name, in.vol.pod_name);
	assert_string_equal(out.vol.options, in.vol.options);
	assert_string_equal(out.vol.token.token, "aa.bb.cc");
	assert_int_equal(out.vol.token.expires_at, 1795356082);
	assert_true(out.vol.readonly);
	assert_true(out.vol.ephemeral);
	/* The mounter's own check accepts what the plugin built. */
	assert_int_equal(csi_volume_check(&out.vol, "/var/lib/kubelet", &msg),
			 CSI_OK);
	mounter_request_release(&in);
	mounter_request_release(&out);
	buf_release(&text);
	buf_release(&msg);
}

static void test_unpublish_and_ping(void **state)
{
	struct mounter_request in, out;
	struct buf text, msg;

	(void)state;
	mounter_request_init(&in);
	mounter_request_init(&out);
	buf_init(&text, WIRE_MAX);
	buf_init(&msg, 1024);
	in.op = MOUNTER_UNPUBLISH;
	fill(&in.vol);
	assert_int_equal(wire_request_encode(&in, &text), 0);
	/* An unpublish carries no token. */
	assert_null(strstr(buf_str(&text), "aa.bb.cc"));
	assert_int_equal(wire_request_decode(text.data, text.len, &out, &msg),
			 0);
	assert_int_equal(out.op, MOUNTER_UNPUBLISH);
	assert_string_equal(out.vol.target, in.vol.target);
	assert_null(out.vol.source);
	buf_reset(&text);
	in.op = MOUNTER_PING;
	assert_int_equal(wire_request_encode(&in, &text), 0);
	assert_string_equal(buf_str(&text), "{\"op\":\"ping\"}");
	mounter_request_release(&in);
	mounter_request_release(&out);
	buf_release(&text);
	buf_release(&msg);
}

static void test_decode_refuses(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{}",
	    "{\"op\":\"format-disk\"}",
	    "{\"op\":5}",
	    "{\"op\":\"publish\",\"target\":5}",
	    "{\"op\":\"publish\",\"readonly\":\"yes\"}",
	    "{\"op\":\"publish\",\"token_expires_at\":\"soon\"}",
	    "{\"op\":\"publish\",\"source\":\"a\\u0000b\"}",
	    "{\"op\":\"ping\"} {\"op\":\"ping\"}",
	};
	struct mounter_request r;
	struct buf msg;

	(void)state;
	mounter_request_init(&r);
	buf_init(&msg, 1024);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (wire_request_decode(bad[i], strlen(bad[i]), &r, &msg) !=
		    -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_null(r.vol.source);
	}
	/* A NUL byte inside the message. */
	assert_int_equal(
	    wire_request_decode("{\"op\":\"ping\"}\0", 14, &r, &msg), -EINVAL);
	buf_release(&msg);
}

static void test_reply(void **state)
{
	struct mounter_reply r;
	struct buf text;

	(void)state;
	mounter_reply_init(&r);
	buf_init(&text, WIRE_MAX);
	assert_int_equal(wire_reply_encode(CSI_PERMISSION_DENIED,
					   "AADSTS70021: no match", NULL,
					   &text),
			 0);
	assert_int_equal(wire_reply_decode(text.data, text.len, &r), 0);
	assert_int_equal(r.code, CSI_PERMISSION_DENIED);
	assert_string_equal(r.message, "AADSTS70021: no match");
	assert_null(r.status);
	buf_reset(&text);
	assert_int_equal(
	    wire_reply_encode(CSI_OK, "", "{\"daemons\":[]}", &text), 0);
	assert_int_equal(wire_reply_decode(text.data, text.len, &r), 0);
	assert_string_equal(r.status, "{\"daemons\":[]}");
	assert_int_equal(wire_reply_decode("{\"code\":99}", 11, &r), -EINVAL);
	assert_int_equal(wire_reply_decode("{\"message\":\"x\"}", 15, &r),
			 -EINVAL);
	mounter_reply_release(&r);
	buf_release(&text);
}

struct server {
	int fd;
	int calls;
};

/* Answers each connection: the op's name back as the message. */
static void *serve(void *arg)
{
	struct server *s = arg;

	for (int i = 0; i < s->calls; i++) {
		int c = accept(s->fd, NULL, NULL);
		struct mounter_request r;
		struct buf in, out, msg;
		assert_true(c >= 0);
		mounter_request_init(&r);
		buf_init(&in, WIRE_MAX);
		buf_init(&out, WIRE_MAX);
		buf_init(&msg, 1024);
		int err = wire_recv(c, &in);
		if (err == 0 &&
		    wire_request_decode(in.data, in.len, &r, &msg) == 0) {
			wire_reply_encode(CSI_OK,
					  r.op == MOUNTER_PUBLISH ? r.vol.target
								  : "other",
					  NULL, &out);
		} else {
			wire_reply_encode(CSI_INVALID_ARGUMENT,
					  err == -EMSGSIZE ? "too big" : "bad",
					  NULL, &out);
		}
		wire_send(c, out.data, out.len);
		close(c);
		mounter_request_release(&r);
		buf_release(&in);
		buf_release(&out);
		buf_release(&msg);
	}
	return NULL;
}

static void test_socket_call(void **state)
{
	char dir[] = "/tmp/spfs-wire-XXXXXX", path[128];
	struct mounter_request req;
	struct mounter_reply reply;
	struct server s = {.calls = 2};
	struct stat st;
	pthread_t th;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mounter.sock", dir);
	mounter_request_init(&req);
	mounter_reply_init(&reply);
	req.op = MOUNTER_PUBLISH;
	fill(&req.vol);
	/* Nobody listens yet. */
	assert_int_equal(wire_call(path, &req, 1000, &reply), -ENOENT);
	s.fd = wire_listen(path);
	assert_true(s.fd >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(pthread_create(&th, NULL, serve, &s), 0);
	assert_int_equal(wire_call(path, &req, 5000, &reply), 0);
	assert_int_equal(reply.code, CSI_OK);
	assert_string_equal(reply.message, req.vol.target);
	/* A message over WIRE_MAX is refused whole, not cut. */
	free(req.vol.options);
	req.vol.options = malloc(WIRE_MAX);
	memset(req.vol.options, 'a', WIRE_MAX - 1);
	req.vol.options[WIRE_MAX - 1] = '\0';
	int err = wire_call(path, &req, 5000, &reply);
	assert_true(err == -EFBIG || err == -EMSGSIZE);
	/* The server got nothing or refused it; answer the waiting accept. */
	if (err == -EFBIG) {
		req.op = MOUNTER_PING;
		assert_int_equal(wire_call(path, &req, 5000, &reply), 0);
		assert_string_equal(reply.message, "other");
	}
	pthread_join(th, NULL);
	close(s.fd);
	unlink(path);
	rmdir(dir);
	mounter_request_release(&req);
	mounter_reply_release(&reply);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_round_trip),
	    cmocka_unit_test(test_unpublish_and_ping),
	    cmocka_unit_test(test_decode_refuses),
	    cmocka_unit_test(test_reply),
	    cmocka_unit_test(test_socket_call),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
