/* SPDX-License-Identifier: MIT */
/*
 * The one way csi/ turns untrusted bytes into a JSON object (see the
 * header): limits first, then json-c, then nothing but whitespace after.
 */
#include "config.h"

#include "csi/json_object.h"

#include <json-c/json.h>
#include <string.h>

struct json_object *csi_json_object_parse(const char *data, size_t len,
					  size_t max, int depth)
{
	struct json_tokener *tok;
	struct json_object *o;

	if (len > max || memchr(data, '\0', len))
		return NULL;
	tok = json_tokener_new_ex(depth);
	if (!tok)
		return NULL;
	o = json_tokener_parse_ex(tok, data, (int)len);
	if (o && (json_tokener_get_error(tok) != json_tokener_success ||
		  !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	for (size_t i = o ? json_tokener_get_parse_end(tok) : len; i < len;
	     i++) {
		if (!strchr(" \t\r\n", data[i])) {
			json_object_put(o);
			o = NULL;
			break;
		}
	}
	json_tokener_free(tok);
	return o;
}
