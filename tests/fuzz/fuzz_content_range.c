/* SPDX-License-Identifier: MIT */
/* Content-Range: no crash, and an accepted range is consistent. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/content_range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct http_content_range r;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if (http_content_range_parse(text, &r) == 0) {
		if (r.first >= 0 &&
		    (r.last < r.first || (r.total >= 0 && r.total <= r.last)))
			abort();
		if (r.first < 0 && (r.last != -1 || r.total < 0))
			abort();
	}
	free(text);
	return 0;
}
