/* SPDX-License-Identifier: MIT */
#ifndef SPFS_AUTH_ASSERTION_H
#define SPFS_AUTH_ASSERTION_H

/*
 * Client-certificate assertions for Entra ID: a JWT signed with the
 * certificate's RSA key, identifying the certificate by its SHA-256
 * thumbprint (x5t#S256, PS256: current) or SHA-1 thumbprint (x5t, RS256:
 * legacy). Entra accepts both.
 */

struct cert_credential;

/* Loads the certificate and its key (key_path NULL: both in cert_path).
 * NULL + *err: -ENOENT/-EACCES (file), -EINVAL (no certificate, no key, not
 * RSA, key does not match; logged), -ENOMEM. */
struct cert_credential *cert_credential_load(const char *cert_path,
					     const char *key_path, int *err);
void cert_credential_free(struct cert_credential *c);

/* Signs an assertion for client_id, audience token_url, valid from now for
 * 10 minutes, with a fresh jti. *out is malloc'd (wipe before freeing).
 * Returns 0, -ENOMEM or -EIO (OpenSSL failure). */
int cert_assertion_build(const struct cert_credential *c, const char *client_id,
			 const char *token_url, long long now, int legacy,
			 char **out);

#endif
