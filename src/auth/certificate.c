/* SPDX-License-Identifier: MIT */
/*
 * Client certificate, for developers outside Kubernetes: spfs signs its own
 * short-lived assertion (PS256, x5t#S256) with the certificate's key for
 * every exchange. The key is loaded once, at start, so a bad file fails fast.
 */
#include "config.h"

#include "auth/credential.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/assertion.h"
#include "auth/entra_error.h"
#include "base/url.h"

struct certificate_cred {
	struct credential base;
	struct entra_client ec;
	struct cert_credential *cert;
};

static int certificate_fetch(struct credential *c, struct token_grant *grant,
			     struct buf *msg)
{
	struct certificate_cred *cc = (struct certificate_cred *)c;
	const struct auth_config *cfg = cc->ec.cfg;
	struct buf form;
	char *assertion = NULL;
	long aadsts;
	long long now = (long long)time(NULL);
	int err;

	buf_init_secret(&form, 64 * 1024);
	err = cert_assertion_build(cc->cert, cfg->client_id, cc->ec.token_url,
				   now, 0, &assertion);
	if (err) {
		buf_reset(msg);
		buf_appendf(msg, "signing the client assertion failed (%s)",
			    strerror(-err));
		err = err == -ENOMEM ? err : -EACCES;
		goto out;
	}
	err = url_form_add(&form, "grant_type", "client_credentials");
	err = err ? err : url_form_add(&form, "client_id", cfg->client_id);
	err =
	    err ? err
		: url_form_add(
		      &form, "client_assertion_type",
		      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	err = err ? err : url_form_add(&form, "client_assertion", assertion);
	err = err ? err : url_form_add(&form, "scope", cc->ec.scope);
	if (err)
		goto out;

	struct entra_error_context ctx = {
	    .credential = "client certificate",
	    .client_id = cfg->client_id,
	    .tenant_id = cfg->tenant_id,
	    .now = now,
	};
	err = entra_token_post(&cc->ec, &form, &ctx, grant, &aadsts, msg);
out:
	if (assertion) {
		explicit_bzero(assertion, strlen(assertion));
		free(assertion);
	}
	buf_release(&form);
	return err;
}

static void certificate_free(struct credential *c)
{
	struct certificate_cred *cc = (struct certificate_cred *)c;

	cert_credential_free(cc->cert);
	entra_client_release(&cc->ec);
	free(cc);
}

struct credential *credential_certificate_new(const struct auth_config *cfg,
					      struct http *http,
					      struct buf *msg, int *err)
{
	struct certificate_cred *cc = calloc(1, sizeof(*cc));

	if (!cc || entra_client_init(&cc->ec, cfg, http) != 0) {
		free(cc);
		*err = -ENOMEM;
		return NULL;
	}
	cc->base.name = "client certificate";
	cc->base.fetch = certificate_fetch;
	cc->base.free = certificate_free;
	cc->cert =
	    cert_credential_load(cfg->cert_path, cfg->cert_key_path, err);
	if (!cc->cert) {
		buf_reset(msg);
		buf_appendf(msg, "cannot use the client certificate %s: %s",
			    cfg->cert_path, strerror(-*err));
		certificate_free(&cc->base);
		return NULL;
	}
	*err = 0;
	return &cc->base;
}
