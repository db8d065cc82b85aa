/* SPDX-License-Identifier: MIT */
/* csi.storage.k8s.io/serviceAccount.tokens and RFC 3339 times: no crash,
 * no leak, and a token accepted only when it can be written to a file
 * spfs reads as one JWT. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csi/sa_tokens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sa_token t;
	struct buf msg;
	char text[64];
	long long when;

	sa_token_init(&t);
	buf_init(&msg, 4096);
	if (sa_tokens_parse((const char *)data, size, SA_TOKENS_AUDIENCE, &t,
			    &msg) == 0) {
		size_t n = strlen(t.token);
		if (n == 0 || n > SA_TOKEN_MAX ||
		    strspn(t.token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmno"
				    "pqrstuvwxyz0123456789-_.") != n)
			abort();
	} else if (t.token) {
		abort(); /* a failure leaves no token behind */
	}
	sa_token_release(&t);
	buf_release(&msg);

	/* The same bytes as a time. */
	if (size < sizeof(text)) {
		memcpy(text, data, size);
		text[size] = '\0';
		if (rfc3339_parse(text, &when) == 0 && when < -86400)
			abort();
	}
	return 0;
}
