/* SPDX-License-Identifier: MIT */
/*
 * The memory estimate of a JSON parse (see json_cost.h). One pass, no
 * allocation: strings are skipped (escapes included), every container and
 * every scalar token outside them counted. Written here because no parser
 * we have reports its cost before building the tree.
 */
#include "config.h"

#include "base/json_cost.h"

#include <stdbool.h>
#include <stdint.h>

#define COST_CONTAINER 800
#define COST_SCALAR    100

size_t json_cost(const char *text, size_t len)
{
	size_t containers = 0, scalars = 0;
	bool in_token = false;

	for (size_t i = 0; i < len; i++) {
		switch (text[i]) {
		case '"':
			scalars++;
			in_token = false;
			/* To the closing quote; a backslash escapes one
			 * character (the \uXXXX digits need no care). */
			for (i++; i < len && text[i] != '"'; i++)
				if (text[i] == '\\')
					i++;
			break;
		case '{':
		case '[':
			containers++;
			in_token = false;
			break;
		case ' ':
		case '\t':
		case '\r':
		case '\n':
		case ',':
		case ':':
		case '}':
		case ']':
			in_token = false;
			break;
		default:
			/* A number or a literal: counted at its first byte. */
			if (!in_token)
				scalars++;
			in_token = true;
		}
	}
	/* Each count is at most len, so only the products can overflow. */
	if (containers > (SIZE_MAX - len) / 2 / COST_CONTAINER ||
	    scalars > (SIZE_MAX - len) / 2 / COST_SCALAR)
		return SIZE_MAX;
	return len + containers * COST_CONTAINER + scalars * COST_SCALAR;
}
