/* SPDX-License-Identifier: MIT */
/* The metrics server's request parser: no crash, no read past the input,
 * and an accepted path is a NUL-terminated, printable, '/'-led string. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int head = -1;
	/* An exact-size copy: ASan catches any read beyond it. */
	char *copy = malloc(size ? size : 1);

	if (!copy)
		abort();
	memcpy(copy, data, size);
	if (httpd_parse_request(copy, size, path, sizeof(path), &head) ==
	    HTTPD_REQ_OK) {
		size_t n = strnlen(path, sizeof(path));
		if (n == sizeof(path) || path[0] != '/' ||
		    (head != 0 && head != 1) || strchr(path, '?'))
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)path[i] <= 0x20 ||
			    (unsigned char)path[i] >= 0x7f)
				abort();
	}
	free(copy);
	return 0;
}
