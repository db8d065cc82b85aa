/* SPDX-License-Identifier: MIT */
/* Retry-After: no crash, and an accepted value is within [0, 3600]. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/retry_after.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	double s = -1;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if (http_retry_after_parse(text, 1700000000, &s) == 0 &&
	    !(s >= 0 && s <= 3600))
		abort();
	free(text);
	return 0;
}
