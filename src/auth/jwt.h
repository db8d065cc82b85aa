/* SPDX-License-Identifier: MIT */
#ifndef SPFS_AUTH_JWT_H
#define SPFS_AUTH_JWT_H

/*
 * JWT claim decoding for diagnostics and error messages. spfs is the client:
 * it never verifies signatures (Entra and Graph do), it only reads claims to
 * tell a person what the token says.
 */

#include <stddef.h>

/* Value type: owned by the caller, released with jwt_claims_release(). */
struct jwt_claims {
	char *alg, *kid; /* header */
	char *iss, *sub, *tid, *oid, *jti;
	char *appid; /* "appid" (v1 tokens), else "azp" (v2) */
	char **aud;  /* a string or an array in the token */
	size_t naud;
	char **roles;
	size_t nroles;
	long long exp, nbf, iat; /* seconds since the epoch, 0 if absent */
	int has_exp, has_nbf, has_iat;
};

/*
 * Decodes the compact JWS token[0..len) (header.payload.signature, base64url
 * with or without padding, each part at most 64 KiB; the signature may be
 * empty but is otherwise checked to be base64url, never verified). Every
 * string is malloc'd or NULL when absent; other claims are ignored.
 * Returns 0, -ENOMEM, or -EINVAL for: not exactly three parts, an empty or
 * oversized header/payload, bad base64url, a part that is not exactly one JSON
 * object, a string claim that is not a string (or holds a NUL), aud/roles not
 * a string or array of strings, exp/nbf/iat not a number in 0..year 9999.
 * On error *out is zeroed (nothing to release).
 */
int jwt_decode(const char *token, size_t len, struct jwt_claims *out);
/* Frees every member and zeroes *c; safe on a zeroed struct. */
void jwt_claims_release(struct jwt_claims *c);

#endif
