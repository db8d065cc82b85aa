/* SPDX-License-Identifier: MIT */
/* Strict base64/base64url codec; see b64.h for why strict. */
#include "config.h"

#include "base/b64.h"

#include <errno.h>
#include <stdint.h>

static const char std_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64_encoded_len(size_t n, enum b64_alphabet alphabet)
{
	if (alphabet == B64_STD)
		return (n + 2) / 3 * 4;
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t b64_decoded_max(size_t n)
{
	return (n + 3) / 4 * 3;
}

void b64_encode(const void *in, size_t n, char *out, enum b64_alphabet alphabet)
{
	const unsigned char *p = in;
	const char *chars = alphabet == B64_URL ? url_chars : std_chars;
	size_t o = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v =
		    (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = chars[v >> 18 & 63];
		out[o++] = chars[v >> 12 & 63];
		out[o++] = chars[v >> 6 & 63];
		out[o++] = chars[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = chars[v >> 18 & 63];
		out[o++] = chars[v >> 12 & 63];
		if (alphabet == B64_STD) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = chars[v >> 18 & 63];
		out[o++] = chars[v >> 12 & 63];
		out[o++] = chars[v >> 6 & 63];
		if (alphabet == B64_STD)
			out[o++] = '=';
	}
	out[o] = '\0';
}

static int char_value(char c, enum b64_alphabet alphabet)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (alphabet == B64_STD) {
		if (c == '+')
			return 62;
		if (c == '/')
			return 63;
	} else {
		if (c == '-')
			return 62;
		if (c == '_')
			return 63;
	}
	return -1;
}

long b64_decode(const char *in, size_t n, void *out, enum b64_alphabet alphabet)
{
	unsigned char *o = out;
	size_t pad = 0;
	long len = 0;

	while (pad < 2 && n > 0 && in[n - 1] == '=') {
		n--;
		pad++;
	}
	if (alphabet == B64_STD && (n + pad) % 4 != 0)
		return -EINVAL;
	if (pad && (n + pad) % 4 != 0)
		return -EINVAL;
	if (n % 4 == 1)
		return -EINVAL;

	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = char_value(in[i], alphabet);
		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[len++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero, else two encodings decode alike. */
	if (acc != 0)
		return -EINVAL;
	return len;
}
