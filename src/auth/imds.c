/* SPDX-License-Identifier: MIT */
/*
 * Managed identity through the instance metadata service (IMDS), for node
 * identities. IMDS is plain HTTP on a link-local address by design; we allow
 * http:// for it only there (or on loopback, for tests), and never send it
 * through a proxy the environment names (http_proxy would otherwise carry
 * the token request, and its answer, across the network).
 */
#include "config.h"

#include "auth/credential.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/entra_error.h"
#include "base/url.h"
#include "http/http.h"

struct imds_cred {
	struct credential base;
	const struct auth_config *cfg;
	struct http *http;
	char *url; /* the full token URL with query */
	int allow_http;
};

static int imds_fetch(struct credential *c, struct token_grant *grant,
		      struct buf *msg)
{
	struct imds_cred *ic = (struct imds_cred *)c;
	const struct http_header headers[] = {
	    {"Metadata", "true"},
	    {"Accept", "application/json"},
	};
	struct http_request req = {
	    .url = ic->url,
	    .headers = headers,
	    .nheaders = 2,
	    .max_body = 256 * 1024,
	    .secret_body = 1,
	    .timeout_ms = 30000,
	    .allow_http = ic->allow_http,
	    .no_proxy = 1, /* link-local, plain HTTP: never via a proxy */
	};
	struct http_response resp;
	struct entra_error ee;
	long long now = (long long)time(NULL);
	int err;

	http_response_init(&resp);
	err = http_perform(ic->http, &req, &resp);
	buf_reset(msg);
	if (err) {
		buf_appendf(msg, "IMDS (%s) unreachable: %s", ic->cfg->imds_url,
			    resp.error);
		err = http_error_is_transient(err) ? -EAGAIN : err;
		goto out;
	}
	if (resp.status == 200) {
		err = token_response_parse(resp.body.data ? resp.body.data : "",
					   resp.body.len, now, grant);
		if (err == -EINVAL) {
			buf_appendf(msg,
				    "IMDS sent a malformed token response");
			err = -EAGAIN;
		}
		goto out;
	}
	if (entra_error_parse(resp.body.data ? resp.body.data : "",
			      resp.body.len, &ee) == 0) {
		struct entra_error_context ctx = {
		    .credential = "managed identity",
		    .client_id = ic->cfg->imds_client_id,
		    .now = now,
		};
		entra_error_message(&ee, &ctx, msg);
		entra_error_release(&ee);
	} else {
		buf_appendf(msg, "IMDS answered HTTP %ld", resp.status);
	}
	/* IMDS documents these as retryable (updating, throttled, 5xx). */
	if (resp.status == 404 || resp.status == 410 || resp.status == 429 ||
	    resp.status >= 500)
		err = -EAGAIN;
	else
		err = -EACCES;
out:
	http_response_release(&resp);
	return err;
}

static void imds_free(struct credential *c)
{
	struct imds_cred *ic = (struct imds_cred *)c;

	free(ic->url);
	free(ic);
}

/* IMDS lives on the link-local address; loopback is allowed for tests. */
static int imds_host_may_use_http(const char *url)
{
	struct url_parts p;
	int ok = 0;

	if (url_parse(url, &p) != 0)
		return 0;
	ok = strcmp(p.host, "169.254.169.254") == 0 ||
	     strcmp(p.host, "127.0.0.1") == 0 ||
	     strcmp(p.host, "localhost") == 0 || strcmp(p.host, "::1") == 0;
	url_parts_release(&p);
	return ok;
}

struct credential *credential_imds_new(const struct auth_config *cfg,
				       struct http *http, struct buf *msg,
				       int *err)
{
	struct imds_cred *ic = calloc(1, sizeof(*ic));
	struct buf url;
	char *resource = NULL;
	const char *parts[] = {"metadata/identity/oauth2/token"};
	char *base = NULL;
	int e = -ENOMEM;

	buf_init(&url, 8192);
	if (!ic)
		goto out;
	ic->base.name = "managed identity";
	ic->base.fetch = imds_fetch;
	ic->base.free = imds_free;
	ic->cfg = cfg;
	ic->http = http;
	ic->allow_http =
	    cfg->allow_http || imds_host_may_use_http(cfg->imds_url);
	/* IMDS takes the resource: the scope without "/.default". */
	resource = cfg->scope ? strndup(cfg->scope, strlen(cfg->scope) - 9)
			      : url_resource_for(cfg->graph_url);
	base = url_join(cfg->imds_url, parts, 1);
	if (!resource || !base)
		goto out;
	e = buf_appendf(&url, "%s?api-version=2018-02-01", base);
	e = e ? e : url_form_add(&url, "resource", resource);
	if (!e && cfg->imds_client_id)
		e = url_form_add(&url, "client_id", cfg->imds_client_id);
	if (e)
		goto out;
	ic->url = buf_detach(&url, NULL);
	if (!ic->url)
		e = -ENOMEM;
out:
	free(resource);
	free(base);
	buf_release(&url);
	if (e && ic) {
		imds_free(&ic->base);
		ic = NULL;
	}
	(void)msg;
	*err = e;
	return ic ? &ic->base : NULL;
}
