/* SPDX-License-Identifier: MIT */
/*
 * Client secret, for developers outside Kubernetes. The secret comes from
 * AZURE_CLIENT_SECRET or from a file (re-read on every exchange so a rotated
 * secret is picked up), never from the command line.
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

#define SECRET_MAX 4096

struct secret_cred {
	struct credential base;
	struct entra_client ec;
};

static int read_secret(const struct auth_config *cfg, struct buf *out,
		       struct buf *msg)
{
	char chunk[512];
	int err = 0;

	buf_reset(out);
	if (!cfg->secret_file)
		return buf_append_str(out, cfg->secret);

	FILE *f = fopen(cfg->secret_file, "re");
	if (!f) {
		err = -errno;
		buf_reset(msg);
		buf_appendf(msg, "cannot read the client secret file %s: %s",
			    cfg->secret_file, strerror(errno));
		return err;
	}
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		err = buf_append(out, chunk, n);
		if (err)
			break;
	}
	explicit_bzero(chunk, sizeof(chunk));
	fclose(f);
	while (out->len && strchr(" \t\r\n", out->data[out->len - 1]))
		out->data[--out->len] = '\0';
	if (!err && out->len == 0)
		err = -EINVAL;
	if (err) {
		buf_reset(msg);
		buf_appendf(msg, "the client secret file %s is %s",
			    cfg->secret_file,
			    err == -EFBIG ? "too large" : "empty");
	}
	return err;
}

static int secret_fetch(struct credential *c, struct token_grant *grant,
			struct buf *msg)
{
	struct secret_cred *s = (struct secret_cred *)c;
	struct buf secret, form;
	long aadsts;
	int err;

	buf_init_secret(&secret, SECRET_MAX);
	buf_init_secret(&form, SECRET_MAX * 4);
	err = read_secret(s->ec.cfg, &secret, msg);
	if (err) {
		err = err == -ENOMEM ? err : -EACCES;
		goto out;
	}
	err = url_form_add(&form, "grant_type", "client_credentials");
	err =
	    err ? err : url_form_add(&form, "client_id", s->ec.cfg->client_id);
	err = err ? err : url_form_add(&form, "client_secret", secret.data);
	err = err ? err : url_form_add(&form, "scope", s->ec.scope);
	if (err)
		goto out;

	struct entra_error_context ctx = {
	    .credential = "client secret",
	    .client_id = s->ec.cfg->client_id,
	    .tenant_id = s->ec.cfg->tenant_id,
	    .now = (long long)time(NULL),
	};
	err = entra_token_post(&s->ec, &form, &ctx, grant, &aadsts, msg);
out:
	buf_release(&secret);
	buf_release(&form);
	return err;
}

static void secret_free(struct credential *c)
{
	struct secret_cred *s = (struct secret_cred *)c;

	entra_client_release(&s->ec);
	free(s);
}

struct credential *credential_secret_new(const struct auth_config *cfg,
					 struct http *http, struct buf *msg,
					 int *err)
{
	struct secret_cred *s = calloc(1, sizeof(*s));

	(void)msg;
	if (!s || entra_client_init(&s->ec, cfg, http) != 0) {
		free(s);
		*err = -ENOMEM;
		return NULL;
	}
	s->base.name = "client secret";
	s->base.fetch = secret_fetch;
	s->base.free = secret_free;
	*err = 0;
	return &s->base;
}
