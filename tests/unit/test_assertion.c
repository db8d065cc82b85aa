/* SPDX-License-Identifier: MIT */
/*
 * Client-certificate assertions, verified here with OpenSSL EVP as Entra
 * would. Key material is generated at test time: most with the openssl CLI
 * into a mkdtemp directory, the odd certificates (expired, small key) with
 * EVP/X509 calls.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/assertion.h"
#include "auth/jwt.h"
#include "base/b64.h"
#include "base/log.h"

#define TOKEN_URL "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
#define CLIENT_ID "11111111-2222-3333-4444-555555555555"

static char dir[] = "/tmp/spfs-test-assertion-XXXXXX";
static char cert[128], key[128], both[128], key_first[128], other_key[128],
    ec_pem[128], enc_key[128], pkcs1_key[128], expired[128], small[128],
    logfile[128];

static void path(char *out, const char *name)
{
	snprintf(out, 128, "%s/%s", dir, name);
}

static int run(const char *cmd)
{
	char full[1024];

	snprintf(full, sizeof(full), "cd %s && (%s) >/dev/null 2>&1 </dev/null",
		 dir, cmd);
	return system(full);
}

/* Writes a self-signed certificate + key (one PEM file) for a fresh RSA key
 * of the given size, valid from `from` to `to` seconds relative to now. */
static int write_cert(const char *file, int bits, long from, long to)
{
	EVP_PKEY *pkey = EVP_RSA_gen((unsigned int)bits);
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f = NULL;
	int ok = 0;

	if (!pkey || !x)
		goto out;
	name = X509_get_subject_name(x);
	ok = X509_set_version(x, 2) &&
	     ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), from) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), to) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"odd", -1, -1,
					0) &&
	     X509_set_issuer_name(x, name) && X509_set_pubkey(x, pkey) &&
	     X509_sign(x, pkey, EVP_sha256()) > 0;
	f = ok ? fopen(file, "w") : NULL;
	ok = f && PEM_write_X509(f, x) &&
	     PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
out:
	if (f)
		fclose(f);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return ok ? 0 : -1;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	path(cert, "c.crt");
	path(key, "c.key");
	path(both, "both.pem");
	path(key_first, "key-first.pem");
	path(other_key, "o.key");
	path(ec_pem, "ec.pem");
	path(enc_key, "enc.key");
	path(pkcs1_key, "pkcs1.key");
	path(expired, "expired.pem");
	path(small, "small.pem");
	path(logfile, "log");
	if (run("openssl req -x509 -newkey rsa:2048 -nodes -keyout c.key -out "
		"c.crt "
		"-days 2 -subj /CN=spfs-test") ||
	    run("cat c.crt c.key > both.pem") ||
	    run("cat c.key c.crt > key-first.pem") ||
	    run("openssl genrsa -out o.key 2048") ||
	    run("openssl pkey -in c.key -aes256 -passout pass:secret -out "
		"enc.key") ||
	    run("openssl pkey -in c.key -traditional -out pkcs1.key") ||
	    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		"-nodes "
		"-keyout ec.key -out ec.crt -days 2 -subj /CN=ec && cat ec.crt "
		"ec.key > ec.pem") ||
	    write_cert(expired, 2048, -2 * 86400, -86400) ||
	    write_cert(small, 1024, -60, 86400))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static int log_fd = -1;

/* Sends log lines to a fresh file until log_collect(). */
static void log_capture(void)
{
	log_fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(log_fd >= 0);
	log_set_fd(log_fd);
}

static char *log_collect(void)
{
	static char text[16384];
	FILE *f = fopen(logfile, "r");
	size_t n;

	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	log_set_fd(-1);
	close(log_fd);
	log_fd = -1;
	return text;
}

static X509 *read_cert(void)
{
	FILE *f = fopen(cert, "r");
	X509 *x;

	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

enum scheme { RS256, PS256 };

/* Verifies the JWS signature with the certificate's public key. salt is the
 * PSS salt length the verifier insists on (ignored for RS256). */
static int verify(const char *jwt, enum scheme scheme, int salt)
{
	X509 *x = read_cert();
	EVP_PKEY *pub = X509_get_pubkey(x);
	const char *dot = strrchr(jwt, '.');
	unsigned char sig[1024];
	long n = b64_decode(dot + 1, strlen(dot + 1), sig, B64_URL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok;

	assert_int_equal(
	    EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pub), 1);
	if (scheme == PS256) {
		assert_int_equal(
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING),
		    1);
		assert_int_equal(
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt),
				 1);
	}
	ok = n == 256 &&
	     EVP_DigestVerify(md, sig, (size_t)n, (const unsigned char *)jwt,
			      (size_t)(dot - jwt)) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pub);
	X509_free(x);
	return ok;
}

/* base64url(digest(DER of the certificate)), computed independently. */
static void thumbprint(const EVP_MD *alg, char *out)
{
	X509 *x = read_cert();
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	int len = i2d_X509(x, &der);

	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, md, &md_len, alg, NULL),
			 1);
	b64_encode(md, md_len, out, B64_URL);
	OPENSSL_free(der);
	X509_free(x);
}

/* The decoded header as text. */
static void header_text(const char *jwt, char *out, size_t cap)
{
	const char *dot = strchr(jwt, '.');
	long n = b64_decode(jwt, (size_t)(dot - jwt), out, B64_URL);

	assert_true(n > 0 && (size_t)n < cap);
	out[n] = '\0';
}

static int is_uuid_v4(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!strchr("0123456789abcdef", s[i])) {
			return 0;
		}
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_ps256(void **state)
{
	int err = 1;
	char *jwt = NULL, header[512], want[512], x5t[64];
	struct jwt_claims c;

	(void)state;
	struct cert_credential *cc = cert_credential_load(cert, key, &err);
	assert_non_null(cc);
	assert_int_equal(err, 0);
	assert_int_equal(
	    cert_assertion_build(cc, CLIENT_ID, TOKEN_URL, 1700000000, 0, &jwt),
	    0);
	assert_non_null(jwt);

	/* RSASSA-PSS, SHA-256, MGF1-SHA-256, salt exactly 32. */
	assert_true(verify(jwt, PS256, 32));
	assert_false(verify(jwt, PS256, 20));
	assert_false(verify(jwt, PS256, 64));
	assert_false(verify(jwt, RS256, 0));

	/* Header: exactly the three members, thumbprint of the DER. */
	thumbprint(EVP_sha256(), x5t);
	assert_int_equal(strlen(x5t), 43);
	snprintf(want, sizeof(want),
		 "{\"alg\":\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":\"%s\"}",
		 x5t);
	header_text(jwt, header, sizeof(header));
	assert_string_equal(header, want);

	/* Claims, read back with our own decoder. */
	assert_int_equal(jwt_decode(jwt, strlen(jwt), &c), 0);
	assert_string_equal(c.alg, "PS256");
	assert_string_equal(c.iss, CLIENT_ID);
	assert_string_equal(c.sub, CLIENT_ID);
	assert_int_equal(c.naud, 1);
	assert_string_equal(c.aud[0], TOKEN_URL);
	assert_true(c.has_nbf && c.has_iat && c.has_exp);
	assert_int_equal(c.nbf, 1700000000);
	assert_int_equal(c.iat, 1700000000);
	assert_int_equal(c.exp, 1700000600);
	assert_non_null(c.jti);
	assert_true(is_uuid_v4(c.jti));
	char first_jti[40];
	strcpy(first_jti, c.jti);
	jwt_claims_release(&c);
	free(jwt);

	/* Every assertion has a fresh jti, and so a different signature. */
	for (int i = 0; i < 8; i++) {
		assert_int_equal(cert_assertion_build(cc, CLIENT_ID, TOKEN_URL,
						      1700000000, 0, &jwt),
				 0);
		assert_int_equal(jwt_decode(jwt, strlen(jwt), &c), 0);
		assert_true(is_uuid_v4(c.jti));
		assert_string_not_equal(c.jti, first_jti);
		jwt_claims_release(&c);
		free(jwt);
	}
	cert_credential_free(cc);
}

static void test_thumbprint_matches_openssl_cli(void **state)
{
	int err;
	char *jwt = NULL, header[512], cmd[512], fp[128] = "";

	(void)state;
	struct cert_credential *cc = cert_credential_load(both, NULL, &err);
	assert_non_null(cc);
	assert_int_equal(
	    cert_assertion_build(cc, "c", "https://l/t", 1, 0, &jwt), 0);
	header_text(jwt, header, sizeof(header));
	snprintf(
	    cmd, sizeof(cmd),
	    "openssl x509 -in %s -outform DER | openssl dgst -sha256 -binary | "
	    "openssl base64 -A | tr '+/' '-_' | tr -d '='",
	    cert);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(fp, sizeof(fp), p));
	pclose(p);
	assert_int_equal(strlen(fp), 43);
	assert_non_null(strstr(header, fp));
	free(jwt);
	cert_credential_free(cc);
}

static void test_rs256_legacy(void **state)
{
	int err;
	char *jwt = NULL, header[512], want[512], x5t[64];
	struct jwt_claims c;

	(void)state;
	struct cert_credential *cc = cert_credential_load(cert, key, &err);
	assert_non_null(cc);
	assert_int_equal(
	    cert_assertion_build(cc, CLIENT_ID, TOKEN_URL, 1700000000, 1, &jwt),
	    0);
	assert_true(verify(jwt, RS256, 0));
	assert_false(verify(jwt, PS256, 32));
	thumbprint(EVP_sha1(), x5t);
	assert_int_equal(strlen(x5t), 27);
	snprintf(want, sizeof(want),
		 "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5t\":\"%s\"}", x5t);
	header_text(jwt, header, sizeof(header));
	assert_string_equal(header, want);
	assert_int_equal(jwt_decode(jwt, strlen(jwt), &c), 0);
	assert_string_equal(c.alg, "RS256");
	assert_int_equal(c.exp, 1700000600);
	jwt_claims_release(&c);
	free(jwt);
	cert_credential_free(cc);
}

/* One file or two, key before or after the certificate, PKCS#8 or PKCS#1:
 * the same key and the same thumbprint. */
static void test_file_layouts(void **state)
{
	const char *layouts[][2] = {
	    {cert, key},  {both, NULL},	     {key_first, NULL},
	    {both, both}, {cert, pkcs1_key}, {cert, both},
	};
	char first[512] = "";

	(void)state;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		int err = 1;
		char *jwt = NULL, header[512];
		struct cert_credential *cc =
		    cert_credential_load(layouts[i][0], layouts[i][1], &err);
		if (!cc)
			fail_msg("layout %zu refused: %d", i, err);
		assert_int_equal(err, 0);
		assert_int_equal(
		    cert_assertion_build(cc, "c", "https://l/t", 5, 0, &jwt),
		    0);
		assert_true(verify(jwt, PS256, 32));
		header_text(jwt, header, sizeof(header));
		if (!*first)
			strcpy(first, header);
		assert_string_equal(header, first);
		free(jwt);
		cert_credential_free(cc);
	}
	cert_credential_free(NULL);
}

static void expect_refused(const char *c, const char *k, int want_err,
			   const char *want_log)
{
	int err = 0;
	char *text;

	log_capture();
	assert_null(cert_credential_load(c, k, &err));
	text = log_collect();
	assert_int_equal(err, want_err);
	if (!strstr(text, want_log))
		fail_msg("log lacks \"%s\": %s", want_log, text);
	/* Paths yes, key material never. */
	assert_null(strstr(text, "PRIVATE KEY-----\n"));
	assert_null(strstr(text, "MII"));
}

static void test_refusals(void **state)
{
	(void)state;
	expect_refused("/nonexistent/c.pem", NULL, -ENOENT,
		       "/nonexistent/c.pem");
	expect_refused(cert, "/nonexistent/k.pem", -ENOENT,
		       "/nonexistent/k.pem");
	expect_refused(cert, NULL, -EINVAL,
		       "no PEM private key"); /* no key inside */
	expect_refused(key, key, -EINVAL,
		       "no PEM certificate"); /* no certificate */
	expect_refused(dir, NULL, -EINVAL,
		       "no PEM certificate"); /* a directory */
	expect_refused(cert, other_key, -EINVAL,
		       "does not match");			 /* mismatch */
	expect_refused(ec_pem, NULL, -EINVAL, "not an RSA key"); /* EC */
	/* Encrypted: refused with a reason, and no prompt (stdin is not read:
	 * the test would hang on a terminal otherwise). */
	expect_refused(cert, enc_key, -EINVAL, "encrypted");

	if (geteuid() != 0) {
		char unreadable[160];
		snprintf(unreadable, sizeof(unreadable), "%s/unreadable.pem",
			 dir);
		assert_int_equal(run("cp both.pem unreadable.pem && chmod 000 "
				     "unreadable.pem"),
				 0);
		expect_refused(unreadable, NULL, -EACCES, "unreadable.pem");
	}

	/* err may be NULL. */
	assert_null(cert_credential_load("/nonexistent/c.pem", NULL, NULL));
}

static void test_warnings(void **state)
{
	int err;
	char *text;
	struct cert_credential *cc;

	(void)state;
	log_set_level(LOG_WARN);
	log_capture();
	cc = cert_credential_load(expired, NULL, &err);
	text = log_collect();
	assert_non_null(
	    cc); /* a warning, not a refusal: the clock may be off */
	assert_non_null(strstr(text, "expired on"));
	cert_credential_free(cc);

	log_capture();
	cc = cert_credential_load(small, NULL, &err);
	text = log_collect();
	assert_non_null(cc);
	assert_non_null(strstr(text, "1024-bit"));
	cert_credential_free(cc);

	log_capture();
	cc = cert_credential_load(cert, key, &err);
	text = log_collect();
	assert_non_null(cc);
	assert_string_equal(text, "");
	cert_credential_free(cc);
	log_set_level(LOG_ERROR);
}

static void test_escaping_and_arguments(void **state)
{
	int err;
	char *jwt = NULL;
	struct jwt_claims c;
	const char *odd_id = "a\"b\\c\x01/d";
	const char *odd_url = "https://l/t?x=\"y\"";

	(void)state;
	struct cert_credential *cc = cert_credential_load(cert, key, &err);
	assert_non_null(cc);
	/* Whatever the caller passes comes back byte for byte. */
	assert_int_equal(cert_assertion_build(cc, odd_id, odd_url, 7, 0, &jwt),
			 0);
	assert_true(verify(jwt, PS256, 32));
	assert_int_equal(jwt_decode(jwt, strlen(jwt), &c), 0);
	assert_string_equal(c.iss, odd_id);
	assert_string_equal(c.sub, odd_id);
	assert_string_equal(c.aud[0], odd_url);
	jwt_claims_release(&c);
	free(jwt);

	jwt = (char *)1;
	assert_int_equal(cert_assertion_build(cc, "", TOKEN_URL, 1, 0, &jwt),
			 -EINVAL);
	assert_null(jwt);
	assert_int_equal(cert_assertion_build(cc, CLIENT_ID, "", 1, 0, &jwt),
			 -EINVAL);
	assert_int_equal(cert_assertion_build(cc, NULL, TOKEN_URL, 1, 0, &jwt),
			 -EINVAL);
	assert_int_equal(cert_assertion_build(cc, CLIENT_ID, NULL, 1, 0, &jwt),
			 -EINVAL);
	assert_int_equal(
	    cert_assertion_build(NULL, CLIENT_ID, TOKEN_URL, 1, 0, &jwt),
	    -EINVAL);
	assert_int_equal(
	    cert_assertion_build(cc, CLIENT_ID, TOKEN_URL, -1, 0, &jwt),
	    -EINVAL);
	assert_int_equal(
	    cert_assertion_build(cc, CLIENT_ID, TOKEN_URL, INT64_MAX, 0, &jwt),
	    -EINVAL);
	assert_null(jwt);
	cert_credential_free(cc);
}

/* Building logs nothing at the most verbose level: no assertion bytes. */
static void test_nothing_logged(void **state)
{
	int err;
	char *jwt = NULL, *text;

	(void)state;
	log_set_level(LOG_TRACE);
	log_capture();
	struct cert_credential *cc = cert_credential_load(cert, key, &err);
	assert_non_null(cc);
	assert_int_equal(
	    cert_assertion_build(cc, CLIENT_ID, TOKEN_URL, 1, 0, &jwt), 0);
	text = log_collect();
	assert_null(strstr(text, "eyJ"));
	assert_null(strstr(text, strrchr(jwt, '.') + 1));
	free(jwt);
	cert_credential_free(cc);
	log_set_level(LOG_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ps256),
	    cmocka_unit_test(test_thumbprint_matches_openssl_cli),
	    cmocka_unit_test(test_rs256_legacy),
	    cmocka_unit_test(test_file_layouts),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_warnings),
	    cmocka_unit_test(test_escaping_and_arguments),
	    cmocka_unit_test(test_nothing_logged),
	};
	log_set_level(LOG_ERROR);
	log_set_fd(-1); /* expected failures log; keep the test output clean */
	return cmocka_run_group_tests(tests, setup, teardown);
}
