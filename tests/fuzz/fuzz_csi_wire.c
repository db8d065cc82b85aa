/* SPDX-License-Identifier: MIT */
/* The mounter's socket messages: whatever arrives, decoding either fails
 * cleanly or gives fields that re-encode; the volume checks and the option
 * canonicalizer never crash; a reply decodes or is refused. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csi/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct mounter_request r;
	struct mounter_reply reply;
	struct buf msg, again;

	mounter_request_init(&r);
	mounter_reply_init(&reply);
	buf_init(&msg, 8192);
	buf_init(&again, WIRE_MAX);
	if (wire_request_decode(text, size, &r, &msg) == 0) {
		if (r.op < MOUNTER_PING || r.op > MOUNTER_STATUS)
			abort();
		csi_volume_check(&r.vol, "/var/lib/kubelet", &msg);
		if (r.vol.options) {
			char *canon = NULL;
			csi_options_add(&canon, r.vol.options, &msg);
			free(canon);
		}
		if (wire_request_encode(&r, &again) != 0 && again.len == 0 &&
		    r.op == MOUNTER_PING)
			abort();
	}
	if (wire_reply_decode(text, size, &reply) == 0 &&
	    (reply.code < 0 || reply.code > 16 || !reply.message))
		abort();
	mounter_request_release(&r);
	mounter_reply_release(&reply);
	buf_release(&msg);
	buf_release(&again);
	return 0;
}
