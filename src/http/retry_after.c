/* SPDX-License-Identifier: MIT */
/* Retry-After parsing: digits only, or the IMF-fixdate HTTP-date form
 * (the obsolete RFC 850 and asctime forms too, as RFC 9110 asks). */
#include "config.h"

#include "http/retry_after.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#define RETRY_AFTER_MAX 3600.0

int http_retry_after_parse(const char *value, time_t now, double *seconds)
{
	static const char *const formats[] = {
	    "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
	    "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
	    "%a %b %e %H:%M:%S %Y",	 /* asctime */
	};
	const char *p = value;

	if (!value)
		return -EINVAL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (isdigit((unsigned char)*p)) {
		double v = 0;
		for (; isdigit((unsigned char)*p); p++) {
			v = v * 10 + (*p - '0');
			if (v > RETRY_AFTER_MAX)
				v = RETRY_AFTER_MAX;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p)
			return -EINVAL;
		*seconds = v;
		return 0;
	}
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(p, formats[i], &tm);
		if (!end)
			continue;
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end)
			continue;
		time_t t = timegm(&tm);
		double d = difftime(t, now);
		*seconds =
		    d < 0 ? 0 : (d > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : d);
		return 0;
	}
	return -EINVAL;
}
