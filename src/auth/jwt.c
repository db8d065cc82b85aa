/* SPDX-License-Identifier: MIT */
/* JWT claim decoding (no verification; see jwt.h). */
#include "config.h"

#include "auth/jwt.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"

#define PART_MAX (64 * 1024)

void jwt_claims_release(struct jwt_claims *c)
{
	char **strs[] = {&c->alg, &c->kid, &c->iss,   &c->sub,
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
	if (len <= 0)
		goto out;
	struct json_tokener *tok = json_tokener_new();
	if (!tok) {
		err = -ENOMEM;
		goto out;
	}
	struct json_object *obj = json_tokener_parse_ex(tok, (char *)raw, (int)len);
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

/* Copies an optional string member. -EINVAL if present but not a string. */
static int get_str(struct json_object *o, const char *key, char **out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	*out = strdup(json_object_get_string(v));
	return *out ? 0 : -ENOMEM;
}

static int get_time(struct json_object *o, const char *key, long long *out,
		    int *has)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (json_object_is_type(v, json_type_int))
		*out = json_object_get_int64(v);
	else if (json_object_is_type(v, json_type_double))
		*out = (long long)json_object_get_double(v);
	else
		return -EINVAL;
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
		if (!*out || !((*out)[0] = strdup(json_object_get_string(v))))
			return -ENOMEM;
		*n = 1;
		return 0;
	}
	if (!json_object_is_type(v, json_type_array))
		return -EINVAL;
	size_t len = json_object_array_length(v);
	*out = calloc(len ? len : 1, sizeof(char *));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		if (!json_object_is_type(e, json_type_string))
			return -EINVAL;
		(*out)[i] = strdup(json_object_get_string(e));
		if (!(*out)[i])
			return -ENOMEM;
		*n = i + 1;
	}
	return 0;
}

int jwt_decode(const char *token, size_t len, struct jwt_claims *out)
{
	struct json_object *header = NULL, *payload = NULL;
	const char *dot1, *dot2;
	int err;

	memset(out, 0, sizeof(*out));
	dot1 = memchr(token, '.', len);
	if (!dot1)
		return -EINVAL;
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return -EINVAL;

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
	err = err ? err : get_str_list(payload, "roles", &out->roles, &out->nroles);
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
