/* SPDX-License-Identifier: MIT */
/* Fuzz the strict base64 decoder: no crash, and decode(encode(x)) == x. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *out = malloc(b64_decoded_max(size) + 1);
	char *enc = malloc(b64_encoded_len(size, B64_STD) + 1);
	unsigned char *back = malloc(size + 1);

	if (!out || !enc || !back)
		abort();
	for (int a = B64_STD; a <= B64_URL; a++) {
		long n = b64_decode((const char *)data, size, out,
				    (enum b64_alphabet)a);
		if (n > (long)b64_decoded_max(size))
			abort();
		b64_encode(data, size, enc, (enum b64_alphabet)a);
		n = b64_decode(enc, strlen(enc), back, (enum b64_alphabet)a);
		if (n != (long)size || memcmp(back, data, size) != 0)
			abort();
	}
	free(out);
	free(enc);
	free(back);
	return 0;
}
