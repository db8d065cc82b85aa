/* SPDX-License-Identifier: MIT */
/* Client-certificate assertions, verified here with OpenSSL as Entra would. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/assertion.h"
#include "auth/jwt.h"
#include "base/b64.h"
#include "base/log.h"

static char dir[] = "/tmp/spfs-test-assertion-XXXXXX";
static char cert[128], key[128], both[128], other_key[128], ec_cert[128];

static int run(const char *cmd)
{
	char full[1024];

	snprintf(full, sizeof(full), "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
	return system(full);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(cert, sizeof(cert), "%s/c.crt", dir);
	snprintf(key, sizeof(key), "%s/c.key", dir);
	snprintf(both, sizeof(both), "%s/both.pem", dir);
	snprintf(other_key, sizeof(other_key), "%s/o.key", dir);
	snprintf(ec_cert, sizeof(ec_cert), "%s/ec.pem", dir);
	if (run("openssl req -x509 -newkey rsa:2048 -nodes -keyout c.key -out c.crt "
		"-days 2 -subj /CN=spfs-test") ||
	    run("cat c.crt c.key > both.pem") ||
	    run("openssl genrsa -out o.key 2048") ||
	    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		"-keyout ec.key -out ec.crt -days 2 -subj /CN=ec && cat ec.crt ec.key > ec.pem"))
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

/* Verifies the assertion's signature with the certificate's public key. */
static int verify(const char *jwt, int pss)
{
	FILE *f = fopen(cert, "r");
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	EVP_PKEY *pub = X509_get_pubkey(x);
	const char *dot = strrchr(jwt, '.');
	unsigned char sig[1024];
	long n = b64_decode(dot + 1, strlen(dot + 1), sig, B64_URL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok;

	fclose(f);
	EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pub);
	if (pss) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
	}
	ok = n > 0 && EVP_DigestVerify(md, sig, (size_t)n, (const unsigned char *)jwt,
				       (size_t)(dot - jwt)) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pub);
	X509_free(x);
	return ok;
}

/* The decoded header as text. */
static void header_text(const char *jwt, char *out, size_t cap)
{
	const char *dot = strchr(jwt, '.');
	long n = b64_decode(jwt, (size_t)(dot - jwt), out, B64_URL);

	assert_true(n > 0 && (size_t)n < cap);
	out[n] = '\0';
}

static void test_ps256(void **state)
{
	int err;
	char *jwt = NULL, header[512];
	struct jwt_claims c;

	(void)state;
	struct cert_credential *cc = cert_credential_load(cert, key, &err);
	assert_non_null(cc);
	assert_int_equal(cert_assertion_build(cc, "client-1",
					      "https://login.example/t/oauth2/v2.0/token",
					      1700000000, 0, &jwt),
			 0);
	assert_true(verify(jwt, 1));
	assert_false(verify(jwt, 0));
	header_text(jwt, header, sizeof(header));
	assert_non_null(strstr(header, "\"alg\":\"PS256\""));
	assert_non_null(strstr(header, "\"x5t#S256\":\""));

	assert_int_equal(jwt_decode(jwt, strlen(jwt), &c), 0);
	assert_string_equal(c.iss, "client-1");
	assert_string_equal(c.sub, "client-1");
	assert_string_equal(c.aud[0], "https://login.example/t/oauth2/v2.0/token");
	assert_int_equal(c.nbf, 1700000000);
	assert_int_equal(c.exp, 1700000600);
	assert_int_equal(strlen(c.jti), 36);
	char first_jti[40];
	strcpy(first_jti, c.jti);
	jwt_claims_release(&c);
	free(jwt);

	/* Every assertion has a fresh jti. */
	assert_int_equal(cert_assertion_build(cc, "client-1", "https://l/t", 1, 0, &jwt), 0);
	assert_int_equal(jwt_decode(jwt, strlen(jwt), &c), 0);
	assert_string_not_equal(c.jti, first_jti);
	jwt_claims_release(&c);
	free(jwt);
	cert_credential_free(cc);
}

static void test_thumbprint_matches_openssl(void **state)
{
	int err;
	char *jwt = NULL, header[512], cmd[512], fp[128] = "";

	(void)state;
	struct cert_credential *cc = cert_credential_load(both, NULL, &err);
	assert_non_null(cc);
	assert_int_equal(cert_assertion_build(cc, "c", "https://l/t", 1, 0, &jwt), 0);
	header_text(jwt, header, sizeof(header));
	snprintf(cmd, sizeof(cmd),
		 "openssl x509 -in %s -outform DER | openssl dgst -sha256 -binary | "
		 "openssl base64 -A | tr '+/' '-_' | tr -d '='", cert);
	FILE *p = popen(cmd, "r");
	assert_non_null(fgets(fp, sizeof(fp), p));
	pclose(p);
	assert_non_null(strstr(header, fp));
	free(jwt);
	cert_credential_free(cc);
}

static void test_rs256_legacy(void **state)
{
	int err;
	char *jwt = NULL, header[512];

	(void)state;
	struct cert_credential *cc = cert_credential_load(cert, key, &err);
	assert_int_equal(cert_assertion_build(cc, "c", "https://l/t", 1, 1, &jwt), 0);
	assert_true(verify(jwt, 0));
	header_text(jwt, header, sizeof(header));
	assert_non_null(strstr(header, "\"alg\":\"RS256\""));
	assert_non_null(strstr(header, "\"x5t\":\""));
	free(jwt);
	cert_credential_free(cc);
}

static void test_bad_inputs(void **state)
{
	int err = 0;

	(void)state;
	assert_null(cert_credential_load("/nonexistent/c.pem", NULL, &err));
	assert_int_equal(err, -ENOENT);
	assert_null(cert_credential_load(cert, NULL, &err)); /* no key inside */
	assert_int_equal(err, -EINVAL);
	assert_null(cert_credential_load(key, key, &err)); /* no certificate */
	assert_int_equal(err, -EINVAL);
	assert_null(cert_credential_load(cert, other_key, &err)); /* mismatch */
	assert_int_equal(err, -EINVAL);
	assert_null(cert_credential_load(ec_cert, NULL, &err)); /* not RSA */
	assert_int_equal(err, -EINVAL);

	struct cert_credential *cc = cert_credential_load(cert, key, &err);
	char *jwt = NULL;
	assert_int_equal(cert_assertion_build(cc, "a\"b", "https://l/t", 1, 0, &jwt), -EINVAL);
	assert_null(jwt);
	cert_credential_free(cc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ps256),
		cmocka_unit_test(test_thumbprint_matches_openssl),
		cmocka_unit_test(test_rs256_legacy),
		cmocka_unit_test(test_bad_inputs),
	};
	log_set_level(LOG_ERROR + 0);
	log_set_fd(-1); /* expected failures log; keep the test output clean */
	return cmocka_run_group_tests(tests, setup, teardown);
}
