/* SPDX-License-Identifier: MIT */
#ifndef SPFS_BASE_B64_H
#define SPFS_BASE_B64_H

/*
 * Base64 (RFC 4648 §4, padded) and base64url (§5). JWTs use unpadded
 * base64url; quickXorHash and Entra's x5t#S256 use the standard alphabet.
 * Decoding is strict: characters outside the alphabet, misplaced padding,
 * impossible lengths and non-zero trailing bits are errors, because a lenient
 * decoder lets two different strings mean the same bytes.
 */

#include <stddef.h>

enum b64_alphabet {
	B64_STD = 0, /* A-Z a-z 0-9 + /, padded with '=' */
	B64_URL = 1, /* A-Z a-z 0-9 - _, unpadded on output */
};

/* Encoded length, excluding the NUL. */
size_t b64_encoded_len(size_t n, enum b64_alphabet alphabet);
/* Upper bound of the decoded length of n characters. */
size_t b64_decoded_max(size_t n);

/* Writes b64_encoded_len()+1 bytes into out (NUL-terminated). */
void b64_encode(const void *in, size_t n, char *out,
		enum b64_alphabet alphabet);

/*
 * Decodes n characters of in into out (room for b64_decoded_max(n) bytes).
 * B64_STD requires padding; B64_URL accepts it or its absence.
 * Returns the decoded length, or -EINVAL for malformed input.
 */
long b64_decode(const char *in, size_t n, void *out,
		enum b64_alphabet alphabet);

#endif
