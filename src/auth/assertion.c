/* SPDX-License-Identifier: MIT */
/*
 * Client-certificate assertion (OpenSSL 3 EVP only). The certificate's DER
 * thumbprints are computed once at load; each assertion gets a fresh jti
 * from RAND_bytes so Entra's replay protection never trips.
 */
#include "config.h"

#include "auth/assertion.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/log.h"

struct cert_credential {
	EVP_PKEY *key;
	char x5t_s256[64]; /* base64url(SHA-256(DER)) */
	char x5t[40];      /* base64url(SHA-1(DER)) */
};

void cert_credential_free(struct cert_credential *c)
{
	if (!c)
		return;
	EVP_PKEY_free(c->key);
	free(c);
}

static int open_pem(const char *path, FILE **f)
{
	*f = fopen(path, "re");
	return *f ? 0 : -errno;
}

struct cert_credential *cert_credential_load(const char *cert_path,
					     const char *key_path, int *err)
{
	struct cert_credential *c = calloc(1, sizeof(*c));
	X509 *x = NULL;
	FILE *f = NULL;
	unsigned char *der = NULL;
	int e;

	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	e = open_pem(cert_path, &f);
	if (e) {
		log_error("client certificate %s: %s", cert_path, strerror(-e));
		goto out;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	f = NULL;
	if (!x) {
		log_error("client certificate %s: no PEM certificate in the file", cert_path);
		e = -EINVAL;
		goto out;
	}
	e = open_pem(key_path ? key_path : cert_path, &f);
	if (e) {
		log_error("client certificate key %s: %s",
			  key_path ? key_path : cert_path, strerror(-e));
		goto out;
	}
	c->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	f = NULL;
	if (!c->key) {
		log_error("client certificate: no (unencrypted) PEM private key in %s",
			  key_path ? key_path : cert_path);
		e = -EINVAL;
		goto out;
	}
	if (EVP_PKEY_get_base_id(c->key) != EVP_PKEY_RSA) {
		log_error("client certificate: the key is not RSA (Entra assertions use PS256/RS256)");
		e = -EINVAL;
		goto out;
	}
	if (X509_check_private_key(x, c->key) != 1) {
		log_error("client certificate: the private key does not match the certificate %s",
			  cert_path);
		e = -EINVAL;
		goto out;
	}

	int der_len = i2d_X509(x, &der);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	if (der_len <= 0 ||
	    !EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL)) {
		e = -EIO;
		goto out;
	}
	b64_encode(md, md_len, c->x5t_s256, B64_URL);
	if (!EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha1(), NULL)) {
		e = -EIO;
		goto out;
	}
	b64_encode(md, md_len, c->x5t, B64_URL);
	e = 0;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	X509_free(x);
	if (e) {
		cert_credential_free(c);
		c = NULL;
	}
	*err = e;
	return c;
}

/* Appends base64url(data). */
static int append_b64url(struct buf *out, const void *data, size_t n)
{
	char *enc = malloc(b64_encoded_len(n, B64_URL) + 1);
	int err;

	if (!enc)
		return -ENOMEM;
	b64_encode(data, n, enc, B64_URL);
	err = buf_append_str(out, enc);
	free(enc);
	return err;
}

static int sign(EVP_PKEY *key, int legacy, const char *msg, size_t n,
		unsigned char **sig, size_t *sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int err = -EIO;

	*sig = NULL;
	if (!md)
		return -ENOMEM;
	if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) != 1)
		goto out;
	if (!legacy &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out;
	if (EVP_DigestSign(md, NULL, sig_len, (const unsigned char *)msg, n) != 1)
		goto out;
	*sig = malloc(*sig_len);
	if (!*sig) {
		err = -ENOMEM;
		goto out;
	}
	if (EVP_DigestSign(md, *sig, sig_len, (const unsigned char *)msg, n) != 1) {
		free(*sig);
		*sig = NULL;
		goto out;
	}
	err = 0;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	return err;
}

int cert_assertion_build(const struct cert_credential *c, const char *client_id,
			 const char *token_url, long long now, int legacy,
			 char **out)
{
	struct buf jwt, json;
	unsigned char rnd[16], *sig = NULL;
	size_t sig_len = 0;
	char jti[37];
	int err;

	*out = NULL;
	buf_init_secret(&jwt, 64 * 1024);
	buf_init(&json, 16 * 1024);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		err = -EIO;
		goto out;
	}
	rnd[6] = (rnd[6] & 0x0f) | 0x40;
	rnd[8] = (rnd[8] & 0x3f) | 0x80;
	snprintf(jti, sizeof(jti),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7],
		 rnd[8], rnd[9], rnd[10], rnd[11], rnd[12], rnd[13], rnd[14],
		 rnd[15]);

	/* Client ids are GUIDs and the URL is ours: refuse anything that would
	 * need JSON escaping rather than escape it. */
	if (strpbrk(client_id, "\"\\") || strpbrk(token_url, "\"\\")) {
		err = -EINVAL;
		goto out;
	}
	err = legacy ? buf_appendf(&json,
				   "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5t\":\"%s\"}",
				   c->x5t)
		     : buf_appendf(&json,
				   "{\"alg\":\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":\"%s\"}",
				   c->x5t_s256);
	err = err ? err : append_b64url(&jwt, json.data, json.len);
	err = err ? err : buf_append(&jwt, ".", 1);
	buf_reset(&json);
	err = err ? err
		  : buf_appendf(&json,
				"{\"aud\":\"%s\",\"iss\":\"%s\",\"sub\":\"%s\",\"jti\":\"%s\","
				"\"nbf\":%lld,\"iat\":%lld,\"exp\":%lld}",
				token_url, client_id, client_id, jti, now, now,
				now + 600);
	err = err ? err : append_b64url(&jwt, json.data, json.len);
	if (err)
		goto out;
	err = sign(c->key, legacy, jwt.data, jwt.len, &sig, &sig_len);
	err = err ? err : buf_append(&jwt, ".", 1);
	err = err ? err : append_b64url(&jwt, sig, sig_len);
	if (err)
		goto out;
	*out = buf_detach(&jwt, NULL);
	if (!*out)
		err = -ENOMEM;
out:
	free(sig);
	buf_release(&jwt);
	buf_release(&json);
	return err;
}
