/* SPDX-License-Identifier: MIT */
/* First-failure-wins reasons for a conversion (see error.h). */
#include "config.h"

#include "sheets/error.h"

#include <errno.h>
#include <stdio.h>

int sheets_fail(struct sheets_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e->code)
		return e->code;
	e->code = code ? code : -EIO;
	va_start(ap, fmt);
	vsnprintf(e->why, sizeof(e->why), fmt, ap);
	va_end(ap);
	return e->code;
}

const char *sheets_printable(const char *s, size_t n, char out[52])
{
	size_t k = 0;

	for (size_t i = 0; i < n && k < 48; i++)
		out[k++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (n > 48)
		out[k++] = '.', out[k++] = '.', out[k++] = '.';
	out[k] = '\0';
	return out;
}
