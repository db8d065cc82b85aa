/* SPDX-License-Identifier: MIT */
/*
 * Parses csi.storage.k8s.io/serviceAccount.tokens with json-c. The value
 * comes from the kubelet, but a driver must still refuse what it does not
 * expect: a size cap before parsing, a shallow depth limit, exactly one JSON
 * object, and a token made only of JWT characters (it is written to a file
 * that spfs reads as the client assertion). Our copy of the token is wiped
 * when released; the copies inside protobuf and json-c are not ours to wipe.
 */
#include "config.h"

#include "csi/sa_tokens.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csi/json_object.h"

void sa_token_init(struct sa_token *t)
{
	t->token = NULL;
	t->expires_at = 0;
}

void sa_token_release(struct sa_token *t)
{
	if (t->token) {
		explicit_bzero(t->token, strlen(t->token));
		free(t->token);
	}
	sa_token_init(t);
}

int sa_token_copy(struct sa_token *dst, const struct sa_token *src)
{
	sa_token_release(dst);
	if (src->token) {
		dst->token = strdup(src->token);
		if (!dst->token)
			return -ENOMEM;
	}
	dst->expires_at = src->expires_at;
	return 0;
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int rfc3339_parse(const char *s, long long *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0;
	struct tm tm;
	const char *p;

	if (!s || strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' ||
	    digits(s + 5, 2, &mo) || s[7] != '-' || digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
	    s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60 || y < 1970)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	int sign = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		if (digits(p + 1, 2, &oh) || p[3] != ':' ||
		    digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d) /* e.g. February 31 */
		return -EINVAL;
	*out = (long long)t - sign * (oh * 3600LL + om * 60LL);
	return 0;
}

static int jwt_shaped(const char *s, size_t n)
{
	int dots = 0;

	if (n == 0 || n > SA_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.')
			dots++;
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			   (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return dots == 2;
}

int sa_tokens_parse(const char *json, size_t len, const char *audience,
		    struct sa_token *out, struct buf *msg)
{
	struct json_object *root, *entry, *v;
	int err = -EINVAL;

	sa_token_release(out);
	if (len > SA_TOKENS_JSON_MAX) {
		buf_appendf(msg, "%s is larger than %d bytes", SA_TOKENS_KEY,
			    SA_TOKENS_JSON_MAX);
		return -EINVAL;
	}
	root = csi_json_object_parse(json, len, SA_TOKENS_JSON_MAX, 4);
	if (!root) {
		buf_appendf(msg, "%s is not a JSON object", SA_TOKENS_KEY);
		return -EINVAL;
	}
	if (!json_object_object_get_ex(root, audience, &entry)) {
		err = -ENOENT;
		goto out;
	}
	if (!json_object_is_type(entry, json_type_object) ||
	    !json_object_object_get_ex(entry, "token", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    !jwt_shaped(json_object_get_string(v),
			(size_t)json_object_get_string_len(v))) {
		buf_appendf(msg,
			    "%s: the entry for audience %s has no token that "
			    "looks like a JWT",
			    SA_TOKENS_KEY, audience);
		goto out;
	}
	out->token = strdup(json_object_get_string(v));
	if (!out->token) {
		err = -ENOMEM;
		goto out;
	}
	if (json_object_object_get_ex(entry, "expirationTimestamp", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    rfc3339_parse(json_object_get_string(v),
				  &out->expires_at) != 0) {
			buf_appendf(msg,
				    "%s: expirationTimestamp of audience %s "
				    "is not an RFC 3339 time",
				    SA_TOKENS_KEY, audience);
			sa_token_release(out);
			goto out;
		}
	}
	err = 0;
out:
	json_object_put(root);
	return err;
}
