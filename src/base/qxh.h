/* SPDX-License-Identifier: MIT */
#ifndef SPFS_BASE_QXH_H
#define SPFS_BASE_QXH_H

/*
 * quickXorHash, the one content hash SharePoint reports for every file
 * (file.hashes.quickXorHash). Streaming: feed bytes in any chunk sizes; the
 * result depends only on the byte sequence. Value type, no allocation.
 */

#include <stddef.h>
#include <stdint.h>

#define QXH_DIGEST_LEN 20
#define QXH_B64_LEN    28 /* base64 of 20 bytes, padded; excluding the NUL */

#define QXH_PERIOD 160

/*
 * Byte i is rotated by 11*i mod 160 bits, and 11 is coprime with 160, so all
 * bytes whose offsets agree modulo 160 share one rotation: we XOR them into
 * fold[offset % 160] (word-wide, fast) and rotate only at the end.
 */
struct qxh {
	unsigned char fold[QXH_PERIOD];
	uint64_t length; /* bytes fed so far */
};

void qxh_init(struct qxh *h);
void qxh_update(struct qxh *h, const void *data, size_t n);
/* qxh_update that also copies the n bytes to dst (not overlapping data):
 * one pass over bytes that are both kept and hashed. */
void qxh_update_copy(struct qxh *h, void *dst, const void *data, size_t n);
/* Starts a part of a file's hash for bytes that sit at offset: parts fed
 * separately combine with qxh_merge() in any order (the hash is linear). */
void qxh_init_at(struct qxh *h, uint64_t offset);
/* XORs a part's fold into h; set h->length to the file size before final. */
void qxh_merge(struct qxh *h, const unsigned char fold[QXH_PERIOD]);
void qxh_final(const struct qxh *h, unsigned char out[QXH_DIGEST_LEN]);
/* Writes QXH_B64_LEN + 1 bytes (NUL-terminated standard base64). */
void qxh_final_b64(const struct qxh *h, char out[QXH_B64_LEN + 1]);

#endif
