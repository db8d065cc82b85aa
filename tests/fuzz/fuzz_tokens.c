/* SPDX-License-Identifier: MIT */
/* Token endpoint answers and JWTs: success bodies, Entra/IMDS error bodies
 * and JWT claim decoding. No crash, no leak, sane outputs. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/credential.h"
#include "auth/entra_error.h"
#include "auth/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct token_grant g;
	struct entra_error e;
	struct jwt_claims c;

	token_grant_init(&g);
	/* A lifetime within the clamp, so that obtained + expires_in never
	 * overflows, and a refresh hint below it. */
	if (token_response_parse(text, size, 1700000000, &g) == 0 &&
	    (g.token.len == 0 || g.expires_in <= 0 ||
	     g.expires_in > TOKEN_LIFETIME_MAX || g.refresh_in < 0 ||
	     (g.refresh_in && g.refresh_in >= g.expires_in)))
		abort();
	token_grant_release(&g);

	if (entra_error_parse(text, size, &e) == 0) {
		struct buf msg;
		buf_init(&msg, 8192);
		entra_error_message(&e, NULL, &msg);
		if (memchr(buf_str(&msg), '\n', msg.len))
			abort(); /* one line, whatever the body says */
		buf_release(&msg);
		entra_error_release(&e);
	}

	if (jwt_decode(text, size, &c) == 0)
		jwt_claims_release(&c);
	return 0;
}
