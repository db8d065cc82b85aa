/* SPDX-License-Identifier: MIT */
/*
 * JWT claim decoding (no verification; see jwt.h).
 *
 * Design: the token comes from a file kubelet writes or from Entra, so it is
 * parsed as hostile input: each part is bounded before allocating, base64url
 * is decoded strictly, the JSON must be exactly one object with nothing after
 * it, and a claim of the wrong type fails the whole decode instead of being
 * silently ignored (a diagnostic that misreports a claim is worse than none).
 * Times are range-checked so callers can do arithmetic on them without
 * overflow. json-c stays inside this file.
 */
#include "config.h"

#include "auth/jwt.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "auth/credential.h"
#include "base/b64.h"
#include "base/json_cost.h"

#define PART_MAX (64 * 1024)
#ifdef JSON_TOKENER_VALIDATE_UTF8 /* json-c >= 0.15 */
#define JWT_JSON_FLAGS (JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8)
#else
#define JWT_JSON_FLAGS JSON_TOKENER_STRICT
#endif
/* 9999-12-31T23:59:59Z: the largest NumericDate we accept. */
#define TIME_MAX 253402300799LL

void jwt_claims_release(struct jwt_claims *c)
{
	char **strs[] = {&c->alg, &c->kid,   &c->iss, &c->sub,
			 &c->tid, &c->appid, &c->oid, &c->jti};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	for (size_t i = 0; i < c->naud; i++)
		free(c->aud[i]);
	free(c->aud);
	for (size_t i = 0; i < c->nroles; i++)
		free(c->roles[i]);
	free(c->roles);
	memset(c, 0, sizeof(*c));
}

/* Decodes one base64url part into a JSON object. */
static int decode_part(const char *p, size_t n, struct json_object **out)
{
	unsigned char *raw;
	long len;
	int err = -EINVAL;

	*out = NULL;
	if (n == 0 || n > PART_MAX)
		return -EINVAL;
	raw = malloc(b64_decoded_max(n) + 1);
	if (!raw)
		return -ENOMEM;
	len = b64_decode(p, n, raw, B64_URL);
	if (len <= 0 ||
	    json_cost((char *)raw, (size_t)len) > AUTH_JSON_COST_MAX)
		goto out;
	struct json_tokener *tok = json_tokener_new();
	if (!tok) {
		err = -ENOMEM;
		goto out;
	}
	/* Strict mode: no trailing commas, comments or NaN/Infinity. */
	json_tokener_set_flags(tok, JWT_JSON_FLAGS);
	struct json_object *obj =
	    json_tokener_parse_ex(tok, (char *)raw, (int)len);
	/* Trailing bytes after the JSON value mean a malformed part. */
	if (obj && json_tokener_get_parse_end(tok) != (size_t)len) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	if (obj && json_object_is_type(obj, json_type_object)) {
		*out = obj;
		err = 0;
	} else {
		json_object_put(obj);
	}
out:
	free(raw);
	return err;
}

/* Copies a JSON string. -EINVAL if it is not a string or holds a NUL (which
 * would let a claim print as something other than what it is). */
static int copy_str(struct json_object *v, char **out)
{
	const char *str;

	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	str = json_object_get_string(v);
	if (strlen(str) != (size_t)json_object_get_string_len(v))
		return -EINVAL;
	*out = strdup(str);
	return *out ? 0 : -ENOMEM;
}

/* Copies an optional string member. -EINVAL if present but not a string. */
static int get_str(struct json_object *o, const char *key, char **out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return copy_str(v, out);
}

static int get_time(struct json_object *o, const char *key, long long *out,
		    int *has)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		/* json-c saturates out-of-range integers at INT64_MAX/MIN,
		 * which the range check below refuses. */
		long long t = json_object_get_int64(v);
		if (t < 0 || t > TIME_MAX)
			return -EINVAL;
		*out = t;
	} else if (json_object_is_type(v, json_type_double)) {
		/* NumericDate may be fractional; json-c also parses NaN and
		 * Infinity, and the cast is undefined outside the range. */
		double d = json_object_get_double(v);
		if (!isfinite(d) || d < 0 || d > (double)TIME_MAX)
			return -EINVAL;
		*out = (long long)d;
	} else {
		return -EINVAL;
	}
	*has = 1;
	return 0;
}

/* A string or an array of strings. */
static int get_str_list(struct json_object *o, const char *key, char ***out,
			size_t *n)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (json_object_is_type(v, json_type_string)) {
		*out = calloc(1, sizeof(char *));
		if (!*out)
			return -ENOMEM;
		int err = copy_str(v, &(*out)[0]);
		if (!err)
			*n = 1;
		return err;
	}
	if (!json_object_is_type(v, json_type_array))
		return -EINVAL;
	size_t len = json_object_array_length(v);
	*out = calloc(len ? len : 1, sizeof(char *));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int err = copy_str(json_object_array_get_idx(v, i), &(*out)[i]);
		if (err)
			return err;
		*n = i + 1;
	}
	return 0;
}

/* The signature is not checked, only its shape: empty (an unsecured JWT,
 * alg "none") or strict base64url within the part bound. */
static int check_signature(const char *p, size_t n)
{
	unsigned char *raw;
	long len;

	if (n == 0)
		return 0;
	if (n > PART_MAX)
		return -EINVAL;
	raw = malloc(b64_decoded_max(n) + 1);
	if (!raw)
		return -ENOMEM;
	len = b64_decode(p, n, raw, B64_URL);
	free(raw);
	return len > 0 ? 0 : -EINVAL;
}

int jwt_decode(const char *token, size_t len, struct jwt_claims *out)
{
	struct json_object *header = NULL, *payload = NULL;
	const char *dot1, *dot2;
	int err;

	memset(out, 0, sizeof(*out));
	if (!token)
		return -EINVAL;
	dot1 = memchr(token, '.', len);
	if (!dot1)
		return -EINVAL;
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return -EINVAL;

	err = check_signature(dot2 + 1, len - (size_t)(dot2 + 1 - token));
	if (err)
		return err;
	err = decode_part(token, (size_t)(dot1 - token), &header);
	if (err)
		goto out;
	err = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload);
	if (err)
		goto out;

	err = get_str(header, "alg", &out->alg);
	err = err ? err : get_str(header, "kid", &out->kid);
	err = err ? err : get_str(payload, "iss", &out->iss);
	err = err ? err : get_str(payload, "sub", &out->sub);
	err = err ? err : get_str(payload, "tid", &out->tid);
	err = err ? err : get_str(payload, "appid", &out->appid);
	if (!err && !out->appid)
		err = get_str(payload, "azp", &out->appid);
	err = err ? err : get_str(payload, "oid", &out->oid);
	err = err ? err : get_str(payload, "jti", &out->jti);
	err = err ? err : get_str_list(payload, "aud", &out->aud, &out->naud);
	err = err ? err
		  : get_str_list(payload, "roles", &out->roles, &out->nroles);
	err = err ? err : get_time(payload, "exp", &out->exp, &out->has_exp);
	err = err ? err : get_time(payload, "nbf", &out->nbf, &out->has_nbf);
	err = err ? err : get_time(payload, "iat", &out->iat, &out->has_iat);
out:
	json_object_put(header);
	json_object_put(payload);
	if (err)
		jwt_claims_release(out);
	return err;
}
