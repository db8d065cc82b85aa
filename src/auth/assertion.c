/* SPDX-License-Identifier: MIT */
/*
 * Client-certificate assertion (OpenSSL 3 EVP only, no deprecated APIs).
 *
 * Design: the certificate's DER thumbprints are computed once at load and the
 * certificate itself is dropped; only the key stays in memory. Each assertion
 * gets a fresh jti from RAND_bytes so Entra's replay protection never trips.
 * Loading never prompts: an encrypted key is refused with a message (a
 * daemon has no terminal, and OpenSSL's default would read one). The JSON is
 * written by hand with proper escaping because the shape is fixed and json-c's
 * default output escapes '/' in the audience URL.
 */
#include "config.h"

#include "auth/assertion.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/b64.h"
#include "base/buf.h"
#include "base/log.h"

#define ASSERTION_LIFETIME 600 /* seconds, as MSAL does */

struct cert_credential {
	EVP_PKEY *key;
	char x5t_s256[64]; /* base64url(SHA-256(DER)) */
	char x5t[40];	   /* base64url(SHA-1(DER)) */
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

/* Passphrase callback: never prompt, remember that one was wanted. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)u = 1;
	return -1;
}

/* Warns about a certificate Entra will refuse for its dates or key size;
 * loading still succeeds (the clock may be what is wrong). */
static void check_usable(const char *path, X509 *x, EVP_PKEY *key)
{
	const ASN1_TIME *na = X509_get0_notAfter(x);
	const ASN1_TIME *nb = X509_get0_notBefore(x);
	struct tm tm;
	char when[32] = "?";

	if (X509_cmp_current_time(na) < 0) {
		if (ASN1_TIME_to_tm(na, &tm) == 1)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm);
		log_warn("client certificate %s expired on %s: Entra ID will "
			 "refuse it",
			 path, when);
	} else if (X509_cmp_current_time(nb) > 0) {
		if (ASN1_TIME_to_tm(nb, &tm) == 1)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm);
		log_warn("client certificate %s is not valid before %s (check "
			 "the clock)",
			 path, when);
	}
	if (EVP_PKEY_get_bits(key) < 2048)
		log_warn("client certificate %s has a %d-bit RSA key: Entra ID "
			 "requires at least 2048",
			 path, EVP_PKEY_get_bits(key));
}

struct cert_credential *cert_credential_load(const char *cert_path,
					     const char *key_path, int *err)
{
	struct cert_credential *c = calloc(1, sizeof(*c));
	const char *kpath = key_path ? key_path : cert_path;
	X509 *x = NULL;
	FILE *f = NULL;
	unsigned char *der = NULL;
	int e, wanted_passphrase = 0;

	if (!c) {
		e = -ENOMEM;
		goto out;
	}
	e = open_pem(cert_path, &f);
	if (e) {
		log_error("client certificate %s: %s", cert_path, strerror(-e));
		goto out;
	}
	/* The first certificate in the file is the client's (a chain may
	 * follow); PEM blocks of other types before it are skipped. */
	x = PEM_read_X509(f, NULL, no_passphrase, &wanted_passphrase);
	fclose(f);
	f = NULL;
	if (!x) {
		log_error("client certificate %s: no PEM certificate "
			  "(-----BEGIN CERTIFICATE-----) in the file",
			  cert_path);
		e = -EINVAL;
		goto out;
	}
	e = open_pem(kpath, &f);
	if (e) {
		log_error("client certificate key %s: %s", kpath, strerror(-e));
		goto out;
	}
	c->key =
	    PEM_read_PrivateKey(f, NULL, no_passphrase, &wanted_passphrase);
	fclose(f);
	f = NULL;
	if (!c->key) {
		if (wanted_passphrase)
			log_error(
			    "client certificate key %s is encrypted: spfs "
			    "cannot prompt for a passphrase; "
			    "store it unencrypted with restrictive permissions "
			    "(openssl pkey -in KEY -out KEY.plain)",
			    kpath);
		else
			log_error(
			    "client certificate key %s: no PEM private key "
			    "(-----BEGIN PRIVATE KEY-----) in the file",
			    kpath);
		e = -EINVAL;
		goto out;
	}
	if (EVP_PKEY_get_base_id(c->key) != EVP_PKEY_RSA) {
		log_error(
		    "client certificate key %s is not an RSA key (%s): Entra "
		    "certificate credentials need RSA for PS256/RS256",
		    kpath, EVP_PKEY_get0_type_name(c->key));
		e = -EINVAL;
		goto out;
	}
	if (X509_check_private_key(x, c->key) != 1) {
		log_error("client certificate: the private key in %s does not "
			  "match the certificate in %s",
			  kpath, cert_path);
		e = -EINVAL;
		goto out;
	}
	check_usable(cert_path, x, c->key);

	int der_len = i2d_X509(x, &der);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	if (der_len <= 0 || !EVP_Digest(der, (size_t)der_len, md, &md_len,
					EVP_sha256(), NULL)) {
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
	if (err)
		*err = e;
	return c;
}

/* Appends s as a JSON string literal (quotes included). */
static int append_json_str(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int err = buf_append(out, "\"", 1);

	for (const unsigned char *p = (const unsigned char *)s; *p && !err;
	     p++) {
		if (*p == '"' || *p == '\\') {
			char esc[2] = {'\\', (char)*p};
			err = buf_append(out, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			char esc[6] = {'\\', 'u',	   '0',
				       '0',  hex[*p >> 4], hex[*p & 15]};
			err = buf_append(out, esc, 6);
		} else {
			err = buf_append(out, p, 1);
		}
	}
	return err ? err : buf_append(out, "\"", 1);
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
	/* PS256 (RFC 7518 §3.5): PSS, SHA-256, MGF1 with SHA-256, 32-byte
	 * salt. All explicit rather than relying on OpenSSL's defaults. */
	if (!legacy &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1))
		goto out;
	if (EVP_DigestSign(md, NULL, sig_len, (const unsigned char *)msg, n) !=
	    1)
		goto out;
	*sig = malloc(*sig_len);
	if (!*sig) {
		err = -ENOMEM;
		goto out;
	}
	if (EVP_DigestSign(md, *sig, sig_len, (const unsigned char *)msg, n) !=
	    1) {
		OPENSSL_cleanse(*sig, *sig_len);
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
	if (!c || !c->key || !client_id || !token_url || !*client_id ||
	    !*token_url || now < 0 || now > LLONG_MAX - ASSERTION_LIFETIME) {
		err = -EINVAL;
		goto out;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		err = -EIO;
		goto out;
	}
	rnd[6] = (rnd[6] & 0x0f) | 0x40;
	rnd[8] = (rnd[8] & 0x3f) | 0x80;
	snprintf(jti, sizeof(jti),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%"
		 "02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7],
		 rnd[8], rnd[9], rnd[10], rnd[11], rnd[12], rnd[13], rnd[14],
		 rnd[15]);

	err =
	    legacy
		? buf_appendf(
		      &json,
		      "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5t\":\"%s\"}",
		      c->x5t)
		: buf_appendf(
		      &json,
		      "{\"alg\":\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":\"%s\"}",
		      c->x5t_s256);
	err = err ? err : append_b64url(&jwt, json.data, json.len);
	err = err ? err : buf_append(&jwt, ".", 1);
	buf_reset(&json);
	err = err ? err : buf_append_str(&json, "{\"aud\":");
	err = err ? err : append_json_str(&json, token_url);
	err = err ? err : buf_append_str(&json, ",\"iss\":");
	err = err ? err : append_json_str(&json, client_id);
	err = err ? err : buf_append_str(&json, ",\"sub\":");
	err = err ? err : append_json_str(&json, client_id);
	err =
	    err ? err
		: buf_appendf(
		      &json,
		      ",\"jti\":\"%s\",\"nbf\":%lld,\"iat\":%lld,\"exp\":%lld}",
		      jti, now, now, now + ASSERTION_LIFETIME);
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
	if (sig)
		OPENSSL_cleanse(sig, sig_len);
	free(sig);
	buf_release(&jwt);
	buf_release(&json);
	return err;
}
