/* SPDX-License-Identifier: MIT */
/* Graph error codes for log lines (cap from the first byte, 0..96): output
 * terminated within cap, only [A-Za-z0-9._?-], never empty, "-" without a
 * code, and a smaller cap gives a prefix of the full answer. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FULL 96

static void check(const char *out, size_t cap)
{
	size_t n = strnlen(out, cap);

	if (n == cap || (cap >= 2 && n == 0))
		abort();
	for (size_t i = 0; i < n; i++) {
		char c = out[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("._?-", c)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t cap = data[0] % (FULL + 1);
	size_t len = size - 1;
	/* Exact-size copies: ASan catches any access beyond them. */
	char *body = malloc(len ? len : 1);
	char *out = malloc(cap ? cap : 1);
	char full[FULL];

	if (!body || !out)
		abort();
	memcpy(body, data + 1, len);
	if (!cap)
		out[0] = 'x';

	graph_error_code(body, len, full, sizeof(full));
	check(full, sizeof(full));
	if (!memmem(body, len, "code", 4) && strcmp(full, "-") != 0)
		abort(); /* no "code" key anywhere: no code */

	graph_error_code(body, len, out, cap);
	if (!cap) {
		if (out[0] != 'x')
			abort(); /* cap 0: nothing written */
	} else {
		check(out, cap);
		if (strncmp(out, full, cap - 1) != 0 ||
		    strlen(out) != strnlen(full, cap - 1))
			abort();
	}
	free(out);
	free(body);
	return 0;
}
