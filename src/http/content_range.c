/* SPDX-License-Identifier: MIT */
/* Content-Range parsing: hand-written so that signs, spaces inside numbers
 * and overflow are refused, which sscanf would let through. */
#include "config.h"

#include "http/content_range.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* Digits at *p (at most 18: fits in long long with room). */
static int number(const char **p, long long *out)
{
	long long v = 0;
	int n = 0;

	while (**p >= '0' && **p <= '9') {
		if (++n > 18)
			return -EINVAL;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	if (!n)
		return -EINVAL;
	*out = v;
	return 0;
}

int http_content_range_parse(const char *value, struct http_content_range *out)
{
	const char *p = value;

	out->first = out->last = out->total = -1;
	if (!p || strncasecmp(p, "bytes", 5) != 0)
		return -EINVAL;
	p += 5;
	if (*p != ' ' && *p != '\t')
		return -EINVAL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '*') {
		p++;
	} else {
		if (number(&p, &out->first) || *p++ != '-' ||
		    number(&p, &out->last) || out->last < out->first)
			return -EINVAL;
	}
	if (*p++ != '/')
		return -EINVAL;
	if (*p == '*') {
		p++;
		if (out->first < 0) /* "bytes * / *" says nothing */
			return -EINVAL;
	} else if (number(&p, &out->total) ||
		   (out->first >= 0 && out->total <= out->last)) {
		return -EINVAL;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	return *p ? -EINVAL : 0;
}
