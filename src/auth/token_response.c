/* SPDX-License-Identifier: MIT */
/*
 * Parsing of token success bodies. Entra sends numbers, IMDS sends strings,
 * MSAL accepts both, so do we. json-c objects stay inside this file.
 *
 * Nothing here trusts the answer: every member's type is checked before it
 * is read, a fractional number is range-checked before its conversion, and
 * lifetimes are clamped to TOKEN_LIFETIME_MAX, so a hostile endpoint
 * cannot overflow an expiry into the past (which made every caller fetch
 * again, forever).
 */
#include "config.h"

#include "auth/credential.h"
#include "base/json_cost.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <json-c/printbuf.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void token_grant_init(struct token_grant *g)
{
	memset(g, 0, sizeof(*g));
	buf_init_secret(&g->token, 64 * 1024);
}

void token_grant_release(struct token_grant *g)
{
	buf_release(&g->token);
}

/* A non-negative integer from a JSON number or a decimal string; json-c
 * saturates integers past int64 at INT64_MAX, and callers clamp. */
static int json_seconds(struct json_object *obj, const char *key,
			long long *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return -ENOENT;
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
	} else if (json_object_is_type(v, json_type_double)) {
		/* The cast is undefined outside long long's range (and for
		 * NaN, which json-c parses). */
		double d = json_object_get_double(v);
		if (!isfinite(d) || d < 0 || d >= 9.2e18)
			return -EINVAL;
		*out = (long long)d;
	} else if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		char *end;
		errno = 0;
		long long n = strtoll(s, &end, 10);
		if (errno || end == s || *end)
			return -EINVAL;
		*out = n;
	} else {
		return -EINVAL;
	}
	return *out < 0 ? -EINVAL : 0;
}

int token_response_parse(const char *body, size_t len, long long now,
			 struct token_grant *grant)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj = NULL, *v;
	long long expires_in = 0, expires_on = 0, refresh_in = 0;
	int err = -EINVAL;

	if (!tok)
		return -ENOMEM;
	if (len > INT32_MAX || json_cost(body, len) > AUTH_JSON_COST_MAX)
		goto out;
	/* Strict, as json_cost() reads it (no comments or single quotes). */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	if (!obj || !json_object_is_type(obj, json_type_object))
		goto out;
	if (!json_object_object_get_ex(obj, "access_token", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		goto out;
	const char *token = json_object_get_string(v);
	size_t token_len = (size_t)json_object_get_string_len(v);

	/* Absent or null: Bearer, the only type Entra issues. */
	if (json_object_object_get_ex(obj, "token_type", &v) &&
	    !json_object_is_type(v, json_type_null) &&
	    (!json_object_is_type(v, json_type_string) ||
	     strcasecmp(json_object_get_string(v), "Bearer") != 0))
		goto out;

	int have_in = json_seconds(obj, "expires_in", &expires_in) == 0;
	int have_on = json_seconds(obj, "expires_on", &expires_on) == 0;
	if (have_in) {
		/* expires_in is relative: robust against clock skew. */
	} else if (have_on && expires_on > now) {
		expires_in = expires_on - now;
	} else {
		goto out;
	}
	if (expires_in <= 0)
		goto out;
	if (expires_in > TOKEN_LIFETIME_MAX)
		expires_in = TOKEN_LIFETIME_MAX;
	if (json_seconds(obj, "refresh_in", &refresh_in) != 0 ||
	    refresh_in >= expires_in)
		refresh_in = 0;

	buf_reset(&grant->token);
	err = buf_append(&grant->token, token, token_len);
	if (err)
		goto out;
	grant->obtained = now;
	grant->expires_in = expires_in;
	grant->refresh_in = refresh_in;
out:
	/* json-c's copy of the token is freed with the object; wipe it. */
	if (obj && json_object_object_get_ex(obj, "access_token", &v) &&
	    json_object_is_type(v, json_type_string)) {
		char *p = (char *)json_object_get_string(v);
		explicit_bzero(p, strlen(p));
	}
	json_object_put(obj);
	/* The tokener's scratch buffer held the string too. */
	if (tok->pb && tok->pb->buf)
		explicit_bzero(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
	return err;
}
