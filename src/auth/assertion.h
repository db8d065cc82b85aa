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

/* Loads the first PEM certificate of cert_path and the PEM private key of
 * key_path (NULL: the same file). Returns an object the caller frees with
 * cert_credential_free(); the private key is held in memory until then.
 * NULL + *err (err may be NULL): -ENOENT/-EACCES/other open errno, -EINVAL
 * (no certificate, no key, encrypted key, not RSA, key does not match the
 * certificate; each logged with the path, never with key bytes), -EIO,
 * -ENOMEM. An expired certificate or a key under 2048 bits only logs a
 * warning. Never prompts for a passphrase. */
struct cert_credential *cert_credential_load(const char *cert_path,
					     const char *key_path, int *err);
void cert_credential_free(struct cert_credential *c);

/* Signs an assertion: header {"alg":"PS256","typ":"JWT","x5t#S256":..}
 * (legacy: {"alg":"RS256","typ":"JWT","x5t":..} with the SHA-1 thumbprint),
 * claims aud=token_url, iss=sub=client_id, a fresh UUIDv4 jti, nbf=iat=now,
 * exp=now+600. PS256 is RSASSA-PSS with SHA-256, MGF1-SHA-256, salt 32.
 * *out is a malloc'd NUL-terminated compact JWS, NULL on failure; it is a
 * credential: the caller wipes it (explicit_bzero/OPENSSL_cleanse) and
 * frees it, and never logs it. Returns 0, -EINVAL (NULL/empty arguments,
 * negative now), -ENOMEM or -EIO (OpenSSL or RNG failure). */
int cert_assertion_build(const struct cert_credential *c, const char *client_id,
			 const char *token_url, long long now, int legacy,
			 char **out);

#endif
