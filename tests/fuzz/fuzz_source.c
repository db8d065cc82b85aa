/* SPDX-License-Identifier: MIT */
/* SOURCE parsing: no crash, and an accepted URL source has a host. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct source s;
	struct buf msg;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	buf_init(&msg, 4096);
	if (source_parse(text, &s, &msg) == 0) {
		if (!s.drive_id && (!s.host || !s.site_path))
			abort();
		source_release(&s);
	} else if (msg.len == 0 && strlen(text) == size) {
		abort(); /* a refusal must say why */
	}
	buf_release(&msg);
	free(text);
	return 0;
}
