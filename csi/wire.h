/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_WIRE_H
#define SPFS_CSI_WIRE_H

/*
 * How the plugin asks the mounter: one request and one reply per
 * connection, each a JSON object in a single SOCK_SEQPACKET message on a
 * unix socket. The socket keeps message boundaries and json-c parses, so
 * nothing here frames or escapes by hand. The socket is 0600 in a 0700
 * directory and the mounter answers root only (SO_PEERCRED): a publish
 * carries a pod's token.
 *
 *   {"op":"ping"}
 *   {"op":"publish", "volume_id", "target", "readonly", "source",
 *    "client_id", "tenant_id", "namespace", "service_account", "pod_name",
 *    "ephemeral", "options", "token", "token_expires_at"}
 *   {"op":"unpublish", "volume_id", "target"}
 *   {"op":"status"}
 * reply: {"code": gRPC code, "message": "...", "status": {...} (status)}
 */

#include <stddef.h>

#include "base/buf.h"
#include "csi/volume.h"

#define WIRE_MAX (256 * 1024)

enum mounter_op {
	MOUNTER_PING = 1,
	MOUNTER_PUBLISH,
	MOUNTER_UNPUBLISH,
	MOUNTER_STATUS,
};

struct mounter_request {
	enum mounter_op op;
	struct csi_volume vol; /* publish: all; unpublish: id and target */
};

void mounter_request_init(struct mounter_request *r);
void mounter_request_release(struct mounter_request *r);

struct mounter_reply {
	int code;      /* enum csi_code */
	char *message; /* owned; "" when none */
	char *status;  /* owned JSON text (status op), else NULL */
};

void mounter_reply_init(struct mounter_reply *r);
void mounter_reply_release(struct mounter_reply *r);

/* To JSON, into out (use a secret buf: a publish holds a token). 0 or
 * -EFBIG / -ENOMEM. */
int wire_request_encode(const struct mounter_request *r, struct buf *out);
/* From JSON. Only fields are decoded here; the caller checks their
 * contents (csi_volume_check). 0, or -EINVAL with one line in *msg. */
int wire_request_decode(const char *data, size_t len, struct mounter_request *r,
			struct buf *msg);

/* status_json: a JSON object's text or NULL. 0 or -EFBIG / -ENOMEM. */
int wire_reply_encode(int code, const char *message, const char *status_json,
		      struct buf *out);
/* 0 or -EINVAL. */
int wire_reply_decode(const char *data, size_t len, struct mounter_reply *r);

/*
 * One call: connect to the mounter's socket, send, wait up to timeout_ms
 * for the reply. 0 and *reply filled; -ENOENT or -ECONNREFUSED when no
 * mounter listens; -ETIMEDOUT; -EPROTO for a garbled reply; -errno.
 */
int wire_call(const char *socket_path, const struct mounter_request *req,
	      int timeout_ms, struct mounter_reply *reply);

/* The server side: a listening SOCK_SEQPACKET socket at path (a stale
 * socket file is replaced), mode 0600. Returns the fd or -errno. */
int wire_listen(const char *path);
/* One whole message from fd into out (reset first); -EMSGSIZE when it was
 * larger than WIRE_MAX, -ECONNRESET on EOF, -errno. */
int wire_recv(int fd, struct buf *out);
int wire_send(int fd, const char *data, size_t len);

#endif
