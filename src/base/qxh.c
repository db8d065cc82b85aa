/* SPDX-License-Identifier: MIT */
/*
 * quickXorHash (width 160, shift 11). The per-byte definition rotates each
 * byte into a 160-bit accumulator; we fold first and rotate 160 bytes at the
 * end, which turns the hot loop into word-wide XORs (see qxh.h).
 */
#include "config.h"

#include "base/qxh.h"

#include "base/b64.h"

#include <string.h>

void qxh_init(struct qxh *h)
{
	memset(h, 0, sizeof(*h));
}

void qxh_init_at(struct qxh *h, uint64_t offset)
{
	memset(h, 0, sizeof(*h));
	h->length = offset;
}

void qxh_merge(struct qxh *h, const unsigned char fold[QXH_PERIOD])
{
	for (size_t i = 0; i < QXH_PERIOD; i++)
		h->fold[i] ^= fold[i];
}

void qxh_update(struct qxh *h, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t phase = (size_t)(h->length % QXH_PERIOD);

	h->length += n;
	/* Bring the phase to 0 so whole blocks line up with fold[]. */
	while (phase != 0 && n > 0) {
		h->fold[phase] ^= *p++;
		n--;
		phase = (phase + 1) % QXH_PERIOD;
	}
	if (n >= QXH_PERIOD) {
		uint64_t acc[QXH_PERIOD / 8], w[QXH_PERIOD / 8];

		memcpy(acc, h->fold, QXH_PERIOD);
		for (; n >= QXH_PERIOD; n -= QXH_PERIOD, p += QXH_PERIOD) {
			memcpy(w, p, QXH_PERIOD);
			for (size_t i = 0; i < QXH_PERIOD / 8; i++)
				acc[i] ^= w[i];
		}
		memcpy(h->fold, acc, QXH_PERIOD);
	}
	for (size_t i = 0; i < n; i++)
		h->fold[i] ^= p[i];
}

void qxh_update_copy(struct qxh *h, void *dst, const void *data, size_t n)
{
	const unsigned char *p = data;
	unsigned char *d = dst;
	size_t phase = (size_t)(h->length % QXH_PERIOD);

	h->length += n;
	while (phase != 0 && n > 0) {
		*d++ = *p;
		h->fold[phase] ^= *p++;
		n--;
		phase = (phase + 1) % QXH_PERIOD;
	}
	if (n >= QXH_PERIOD) {
		uint64_t acc[QXH_PERIOD / 8], w[QXH_PERIOD / 8];

		memcpy(acc, h->fold, QXH_PERIOD);
		for (; n >= QXH_PERIOD;
		     n -= QXH_PERIOD, p += QXH_PERIOD, d += QXH_PERIOD) {
			memcpy(w, p, QXH_PERIOD);
			memcpy(d, w, QXH_PERIOD);
			for (size_t i = 0; i < QXH_PERIOD / 8; i++)
				acc[i] ^= w[i];
		}
		memcpy(h->fold, acc, QXH_PERIOD);
	}
	for (size_t i = 0; i < n; i++) {
		d[i] = p[i];
		h->fold[i] ^= p[i];
	}
}

void qxh_final(const struct qxh *h, unsigned char out[QXH_DIGEST_LEN])
{
	memset(out, 0, QXH_DIGEST_LEN);
	for (unsigned r = 0; r < QXH_PERIOD; r++) {
		unsigned v = h->fold[r];
		if (!v)
			continue;
		unsigned shift = (11u * r) % QXH_PERIOD;
		unsigned byte = shift / 8, bit = shift % 8;
		unsigned wide = v << bit; /* up to 15 bits, spans two bytes */

		out[byte] ^= (unsigned char)(wide & 0xff);
		out[(byte + 1) % QXH_DIGEST_LEN] ^= (unsigned char)(wide >> 8);
	}
	for (unsigned j = 0; j < 8; j++)
		out[12 + j] ^= (unsigned char)(h->length >> (8 * j));
}

void qxh_final_b64(const struct qxh *h, char out[QXH_B64_LEN + 1])
{
	unsigned char digest[QXH_DIGEST_LEN];

	qxh_final(h, digest);
	b64_encode(digest, sizeof(digest), out, B64_STD);
}
