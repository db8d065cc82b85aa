/* SPDX-License-Identifier: MIT */
/*
 * The Entra ID v2.0 token request shared by the workload-identity,
 * certificate and secret sources: one form POST, one classification of the
 * answer into success, refusal (actionable message) or transient failure.
 */
#include "config.h"

#include "auth/credential.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/entra_error.h"
#include "base/log.h"
#include "base/url.h"
#include "http/http.h"

#define TOKEN_TIMEOUT_MS 30000

int entra_client_init(struct entra_client *ec, const struct auth_config *cfg,
		      struct http *http)
{
	const char *parts[] = {cfg->tenant_id, "oauth2/v2.0/token"};

	ec->cfg = cfg;
	ec->http = http;
	ec->token_url = url_join(cfg->authority_host, parts, 2);
	ec->scope = cfg->scope ? strdup(cfg->scope)
			       : url_scope_for_resource(cfg->graph_url);
	if (!ec->token_url || !ec->scope) {
		entra_client_release(ec);
		return -ENOMEM;
	}
	return 0;
}

void entra_client_release(struct entra_client *ec)
{
	free(ec->token_url);
	free(ec->scope);
	ec->token_url = NULL;
	ec->scope = NULL;
}

int entra_token_post(const struct entra_client *ec, const struct buf *form,
		     const struct entra_error_context *ctx,
		     struct token_grant *grant, long *aadsts, struct buf *msg)
{
	const struct http_header headers[] = {
	    {"Content-Type", "application/x-www-form-urlencoded"},
	    {"Accept", "application/json"},
	};
	struct http_request req = {
	    .method = "POST",
	    .url = ec->token_url,
	    .headers = headers,
	    .nheaders = 2,
	    .body = form->data,
	    .body_len = form->len,
	    .max_body = 256 * 1024,
	    .secret_body = 1,
	    .timeout_ms = TOKEN_TIMEOUT_MS,
	};
	struct http_response resp;
	struct entra_error ee;
	int have_ee = 0;
	int err;

	*aadsts = 0;
	http_response_init(&resp);
	long long now = (long long)time(NULL);
	err = http_perform(ec->http, &req, &resp);
	if (err) {
		buf_reset(msg);
		if (err == -EPROTO) {
			buf_appendf(msg,
				    "TLS to the token endpoint failed: %s (is "
				    "-o cafile right?)",
				    resp.error);
		} else if (http_error_is_transient(err)) {
			buf_appendf(msg, "token endpoint unreachable: %s",
				    resp.error);
			err = -EAGAIN;
		} else {
			buf_appendf(msg, "token request failed: %s",
				    resp.error);
		}
		goto out;
	}

	if (resp.status == 200) {
		err = token_response_parse(resp.body.data ? resp.body.data : "",
					   resp.body.len, now, grant);
		if (err == -EINVAL) {
			buf_reset(msg);
			buf_appendf(msg,
				    "token endpoint sent a malformed success "
				    "response (HTTP 200, %zu bytes)",
				    resp.body.len);
			err = -EAGAIN;
		}
		goto out;
	}

	have_ee = entra_error_parse(resp.body.data ? resp.body.data : "",
				    resp.body.len, &ee) == 0;
	buf_reset(msg);
	if (have_ee) {
		/* The message may name the scope asked for (500011). */
		struct entra_error_context c = *ctx;
		c.scope = c.scope ? c.scope : ec->scope;
		*aadsts = ee.aadsts;
		entra_error_message(&ee, &c, msg);
	} else {
		buf_appendf(msg, "token endpoint answered HTTP %ld",
			    resp.status);
	}
	if (resp.status == 429 || resp.status >= 500) {
		if (resp.retry_after)
			buf_appendf(msg, " (Retry-After: %s)",
				    resp.retry_after);
		err = -EAGAIN;
	} else {
		err = -EACCES;
	}
out:
	if (have_ee)
		entra_error_release(&ee);
	http_response_release(&resp);
	return err;
}
