/* SPDX-License-Identifier: MIT */
/*
 * The mounter protocol's JSON (json-c) and its socket calls. Decoding is
 * strict about types and sizes; it leaves the meaning of the fields to
 * csi_volume_check() on the mounter's side, so the rules live in one place.
 */
#include "config.h"

#include "csi/wire.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "csi/json_object.h"

void mounter_request_init(struct mounter_request *r)
{
	r->op = 0;
	csi_volume_init(&r->vol);
}

void mounter_request_release(struct mounter_request *r)
{
	csi_volume_release(&r->vol);
	r->op = 0;
}

void mounter_reply_init(struct mounter_reply *r)
{
	memset(r, 0, sizeof(*r));
}

void mounter_reply_release(struct mounter_reply *r)
{
	free(r->message);
	free(r->status);
	mounter_reply_init(r);
}

static const char *const op_names[] = {NULL, "ping", "publish", "unpublish",
				       "status"};

static int add_str(struct json_object *o, const char *key, const char *value)
{
	struct json_object *v;

	if (!value)
		return 0;
	v = json_object_new_string(value);
	if (!v || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int add_obj(struct json_object *o, const char *key,
		   struct json_object *v)
{
	if (!v || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

/* The object's text into out; the object is released. */
static int to_text(struct json_object *o, struct buf *out)
{
	size_t n = 0;
	const char *s =
	    json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
	int err = s ? buf_append(out, s, n) : -ENOMEM;

	json_object_put(o);
	return err;
}

int wire_request_encode(const struct mounter_request *r, struct buf *out)
{
	const struct csi_volume *v = &r->vol;
	struct json_object *o = json_object_new_object();
	int err;

	if (!o)
		return -ENOMEM;
	if (r->op < MOUNTER_PING || r->op > MOUNTER_STATUS) {
		json_object_put(o);
		return -EINVAL;
	}
	err = add_str(o, "op", op_names[r->op]);
	if (!err && (r->op == MOUNTER_PUBLISH || r->op == MOUNTER_UNPUBLISH)) {
		err = err ? err : add_str(o, "volume_id", v->volume_id);
		err = err ? err : add_str(o, "target", v->target);
	}
	if (!err && r->op == MOUNTER_PUBLISH) {
		err = err ? err : add_str(o, "source", v->source);
		err = err ? err : add_str(o, "client_id", v->client_id);
		err = err ? err : add_str(o, "tenant_id", v->tenant_id);
		err = err ? err : add_str(o, "namespace", v->namespace_);
		err = err ? err
			  : add_str(o, "service_account", v->service_account);
		err = err ? err : add_str(o, "pod_name", v->pod_name);
		err = err ? err : add_str(o, "options", v->options);
		err = err ? err : add_str(o, "token", v->token.token);
		err = err ? err
			  : add_obj(o, "readonly",
				    json_object_new_boolean(v->readonly));
		err = err ? err
			  : add_obj(o, "ephemeral",
				    json_object_new_boolean(v->ephemeral));
		err = err ? err
			  : add_obj(o, "token_expires_at",
				    json_object_new_int64(v->token.expires_at));
	}
	if (err) {
		json_object_put(o);
		return err;
	}
	return to_text(o, out);
}

static struct json_object *parse_object(const char *data, size_t len)
{
	return csi_json_object_parse(data, len, WIRE_MAX, 8);
}

/* An optional string member, copied; wrong types are an error. */
static int get_str(struct json_object *o, const char *key, char **out,
		   size_t max, struct buf *msg)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
	    (size_t)json_object_get_string_len(v) > max ||
	    strlen(json_object_get_string(v)) !=
		(size_t)json_object_get_string_len(v)) {
		buf_appendf(msg,
			    "field %s: expected a string of at most %zu "
			    "bytes",
			    key, max);
		return -EINVAL;
	}
	free(*out);
	*out = strdup(json_object_get_string(v));
	return *out ? 0 : -ENOMEM;
}

static int get_bool(struct json_object *o, const char *key, bool *out,
		    struct buf *msg)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		buf_appendf(msg, "field %s: expected true or false", key);
		return -EINVAL;
	}
	*out = json_object_get_boolean(v);
	return 0;
}

int wire_request_decode(const char *data, size_t len, struct mounter_request *r,
			struct buf *msg)
{
	struct json_object *o = parse_object(data, len), *v;
	struct csi_volume *vol = &r->vol;
	char *op = NULL;
	int err;

	mounter_request_release(r);
	if (!o) {
		buf_appendf(msg, "the request is not one JSON object");
		return -EINVAL;
	}
	err = get_str(o, "op", &op, 32, msg);
	for (int i = MOUNTER_PING; !err && op && i <= MOUNTER_STATUS; i++)
		if (strcmp(op, op_names[i]) == 0)
			r->op = (enum mounter_op)i;
	if (!err && !r->op) {
		buf_appendf(msg, "unknown or missing op");
		err = -EINVAL;
	}
	if (!err && (r->op == MOUNTER_PUBLISH || r->op == MOUNTER_UNPUBLISH)) {
		err = err ? err
			  : get_str(o, "volume_id", &vol->volume_id, 1024, msg);
		err = err ? err : get_str(o, "target", &vol->target, 4096, msg);
	}
	if (!err && r->op == MOUNTER_PUBLISH) {
		err = err ? err : get_str(o, "source", &vol->source, 2048, msg);
		err = err ? err
			  : get_str(o, "client_id", &vol->client_id, 64, msg);
		err = err ? err
			  : get_str(o, "tenant_id", &vol->tenant_id, 256, msg);
		err = err ? err
			  : get_str(o, "namespace", &vol->namespace_, 256, msg);
		err = err ? err
			  : get_str(o, "service_account", &vol->service_account,
				    256, msg);
		err = err ? err
			  : get_str(o, "pod_name", &vol->pod_name, 256, msg);
		err =
		    err ? err : get_str(o, "options", &vol->options, 1024, msg);
		err = err ? err
			  : get_str(o, "token", &vol->token.token, SA_TOKEN_MAX,
				    msg);
		err = err ? err : get_bool(o, "readonly", &vol->readonly, msg);
		err =
		    err ? err : get_bool(o, "ephemeral", &vol->ephemeral, msg);
		if (!err &&
		    json_object_object_get_ex(o, "token_expires_at", &v)) {
			if (!json_object_is_type(v, json_type_int)) {
				buf_appendf(msg, "field token_expires_at: "
						 "expected an integer");
				err = -EINVAL;
			} else {
				vol->token.expires_at =
				    json_object_get_int64(v);
			}
		}
	}
	free(op);
	json_object_put(o);
	if (err)
		mounter_request_release(r);
	return err == -ENOMEM ? err : err ? -EINVAL : 0;
}

int wire_reply_encode(int code, const char *message, const char *status_json,
		      struct buf *out)
{
	struct json_object *o = json_object_new_object(), *status = NULL;
	int err;

	if (!o)
		return -ENOMEM;
	err = add_obj(o, "code", json_object_new_int(code));
	err = err ? err : add_str(o, "message", message ? message : "");
	if (!err && status_json) {
		status = json_tokener_parse(status_json);
		err = status ? add_obj(o, "status", status) : -EINVAL;
	}
	if (err) {
		json_object_put(o);
		return err;
	}
	return to_text(o, out);
}

int wire_reply_decode(const char *data, size_t len, struct mounter_reply *r)
{
	struct json_object *o = parse_object(data, len), *v;
	struct buf ignored;
	int err = 0;

	mounter_reply_release(r);
	if (!o)
		return -EINVAL;
	buf_init(&ignored, 256);
	if (!json_object_object_get_ex(o, "code", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) < 0 || json_object_get_int(v) > 16) {
		err = -EINVAL;
		goto out;
	}
	r->code = json_object_get_int(v);
	err = get_str(o, "message", &r->message, 8192, &ignored);
	if (!err && !r->message)
		r->message = strdup("");
	if (!err && !r->message)
		err = -ENOMEM;
	if (!err && json_object_object_get_ex(o, "status", &v)) {
		const char *s =
		    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
		r->status = s ? strdup(s) : NULL;
		if (!r->status)
			err = -ENOMEM;
	}
out:
	buf_release(&ignored);
	json_object_put(o);
	if (err)
		mounter_reply_release(r);
	return err;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

int wire_send(int fd, const char *data, size_t len)
{
	ssize_t n;

	do
		n = send(fd, data, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

int wire_recv(int fd, struct buf *out)
{
	char *tmp = malloc(WIRE_MAX + 1);
	ssize_t n;
	int err = 0;

	buf_reset(out);
	if (!tmp)
		return -ENOMEM;
	do
		n = recv(fd, tmp, WIRE_MAX + 1, MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		err = -errno;
	else if (n == 0)
		err = -ECONNRESET;
	else if ((size_t)n > WIRE_MAX)
		err = -EMSGSIZE;
	else
		err = buf_append(out, tmp, (size_t)n);
	explicit_bzero(tmp, n > 0 && (size_t)n <= WIRE_MAX ? (size_t)n : 0);
	free(tmp);
	return err;
}

int wire_call(const char *socket_path, const struct mounter_request *req,
	      int timeout_ms, struct mounter_reply *reply)
{
	struct sockaddr_un sa;
	struct buf msg;
	long long deadline = now_ms() + timeout_ms;
	int fd = -1, err;

	buf_init_secret(&msg, WIRE_MAX);
	err = fill_addr(socket_path, &sa);
	if (err)
		goto out;
	err = wire_request_encode(req, &msg);
	if (err)
		goto out;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		err = -errno;
		goto out;
	}
	err = wire_send(fd, msg.data, msg.len);
	if (err)
		goto out;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long long left = deadline - now_ms();
		if (left <= 0) {
			err = -ETIMEDOUT;
			goto out;
		}
		int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno != EINTR) {
			err = -errno;
			goto out;
		}
		if (n > 0)
			break;
	}
	err = wire_recv(fd, &msg);
	if (!err && wire_reply_decode(msg.data, msg.len, reply) != 0)
		err = -EPROTO;
out:
	if (fd >= 0)
		close(fd);
	buf_release(&msg);
	return err;
}

int wire_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd, err = fill_addr(path, &sa);
	mode_t old;

	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path); /* a socket left by an earlier mounter */
	old = umask(0177);
	err = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (err == 0)
		err = listen(fd, 64);
	if (err != 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}
