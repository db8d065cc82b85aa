/* SPDX-License-Identifier: MIT */
#ifndef SPFS_AUTH_JWT_H
#define SPFS_AUTH_JWT_H

/*
 * JWT claim decoding for diagnostics and error messages. spfs is the client:
 * it never verifies signatures (Entra and Graph do), it only reads claims to
 * tell a person what the token says.
 */

#include <stddef.h>

struct jwt_claims {
	char *alg, *kid;                 /* header */
	char *iss, *sub, *tid, *appid, *oid, *jti;
	char **aud;                      /* a string or an array in the token */
	size_t naud;
	char **roles;
	size_t nroles;
	long long exp, nbf, iat;
	int has_exp, has_nbf, has_iat;
};

/* Decodes header.payload.signature (base64url, each part at most 64 KiB).
 * Every string is malloc'd or NULL when absent. Returns 0, -EINVAL for
 * malformed input or claims of the wrong type, -ENOMEM. */
int jwt_decode(const char *token, size_t len, struct jwt_claims *out);
void jwt_claims_release(struct jwt_claims *c);

#endif
