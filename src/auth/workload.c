/* SPDX-License-Identifier: MIT */
/*
 * Workload identity: trade the projected service-account token (a JWT that
 * kubelet rotates) for an access token. The file is re-read by path on every
 * exchange: kubelet swaps it atomically, so a kept fd would go stale. Which
 * file was read is remembered, so that a fixed or rotated token is tried at
 * once instead of after a failure's backoff.
 */
#include "config.h"

#include "auth/credential.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/entra_error.h"
#include "auth/jwt.h"
#include "base/log.h"
#include "base/url.h"

#define SA_TOKEN_MAX (64 * 1024)

struct workload {
	struct credential base;
	struct entra_client ec;
	/* The token file as last read: fetch() writes it outside auth's
	 * lock, changed() reads it under that lock. */
	pthread_mutex_t seen_lock;
	bool seen;
	struct stat seen_st;
};

/* Identity and time of a file: a rotation by the kubelet (a new file
 * renamed over the old) or an edit in place both change one of them. */
static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Reads the whole token file into out (a secret buf), trailing whitespace
 * stripped, and notes which file it was in w. Returns 0 or -errno with an
 * actionable message. */
static int read_token_file(struct workload *w, const char *path,
			   struct buf *out, struct buf *msg)
{
	char chunk[4096];
	int err = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	/* Which file this was (unreadable: what is there): changed()
	 * compares against it. */
	pthread_mutex_lock(&w->seen_lock);
	w->seen = (fd >= 0 ? fstat(fd, &st) : stat(path, &st)) == 0;
	if (w->seen)
		w->seen_st = st;
	pthread_mutex_unlock(&w->seen_lock);

	buf_reset(out);
	if (fd < 0) {
		err = -errno;
		buf_reset(msg);
		buf_appendf(msg,
			    "cannot read the service-account token "
			    "AZURE_FEDERATED_TOKEN_FILE=%s: %s "
			    "(the workload identity webhook projects it into "
			    "pods labelled "
			    "azure.workload.identity/use: \"true\" whose "
			    "service account is annotated "
			    "azure.workload.identity/client-id)",
			    path, strerror(errno));
		return err;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			buf_reset(msg);
			buf_appendf(msg, "reading %s failed: %s", path,
				    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		err = buf_append(out, chunk, (size_t)n);
		if (err) {
			buf_reset(msg);
			buf_appendf(msg,
				    "%s is larger than %d bytes: not a "
				    "service-account token",
				    path, SA_TOKEN_MAX);
			goto out;
		}
	}
	while (out->len && strchr(" \t\r\n", out->data[out->len - 1]))
		out->data[--out->len] = '\0';
	if (out->len == 0) {
		err = -EINVAL;
		buf_reset(msg);
		buf_appendf(msg, "the service-account token file %s is empty",
			    path);
	}
out:
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	return err;
}

static int workload_fetch(struct credential *c, struct token_grant *grant,
			  struct buf *msg)
{
	struct workload *w = (struct workload *)c;
	struct buf assertion, form;
	struct jwt_claims claims;
	int have_claims = 0;
	int err = 0;

	buf_init_secret(&assertion, SA_TOKEN_MAX);
	buf_init_secret(&form, SA_TOKEN_MAX * 2);
	for (int attempt = 0; attempt < 2; attempt++) {
		long aadsts = 0;

		err =
		    read_token_file(w, w->ec.cfg->token_file, &assertion, msg);
		if (err) {
			err = err == -ENOMEM ? err : -EACCES;
			break;
		}
		if (have_claims)
			jwt_claims_release(&claims);
		have_claims =
		    jwt_decode(assertion.data, assertion.len, &claims) == 0;
		struct entra_error_context ctx = {
		    .credential = "workload identity",
		    .client_id = w->ec.cfg->client_id,
		    .tenant_id = w->ec.cfg->tenant_id,
		    .sa_issuer = have_claims ? claims.iss : NULL,
		    .sa_subject = have_claims ? claims.sub : NULL,
		    .sa_exp = have_claims ? claims.exp : 0,
		    .now = (long long)time(NULL),
		};

		buf_reset(&form);
		err = url_form_add(&form, "grant_type", "client_credentials");
		err = err ? err
			  : url_form_add(&form, "client_id",
					 w->ec.cfg->client_id);
		err = err ? err
			  : url_form_add(&form, "client_assertion_type",
					 "urn:ietf:params:oauth:client-"
					 "assertion-type:jwt-bearer");
		err = err ? err
			  : url_form_add(&form, "client_assertion",
					 assertion.data);
		err = err ? err : url_form_add(&form, "scope", w->ec.scope);
		if (err)
			break;

		err =
		    entra_token_post(&w->ec, &form, &ctx, grant, &aadsts, msg);
		/* An expired assertion: kubelet may have rotated the file
		 * since we read it. Read again and retry, once. */
		if (err == -EACCES && aadsts == 700024 && attempt == 0) {
			log_info("workload identity: the service-account token "
				 "was refused as expired; re-reading %s and "
				 "retrying once",
				 w->ec.cfg->token_file);
			continue;
		}
		break;
	}
	if (have_claims)
		jwt_claims_release(&claims);
	buf_release(&assertion);
	buf_release(&form);
	return err;
}

static bool workload_changed(struct credential *c)
{
	struct workload *w = (struct workload *)c;
	struct stat st;
	bool now = stat(w->ec.cfg->token_file, &st) == 0;

	pthread_mutex_lock(&w->seen_lock);
	bool changed = now != w->seen || (now && !same_file(&st, &w->seen_st));
	pthread_mutex_unlock(&w->seen_lock);
	return changed;
}

static void workload_free(struct credential *c)
{
	struct workload *w = (struct workload *)c;

	entra_client_release(&w->ec);
	pthread_mutex_destroy(&w->seen_lock);
	free(w);
}

struct credential *credential_workload_new(const struct auth_config *cfg,
					   struct http *http, struct buf *msg,
					   int *err)
{
	struct workload *w = calloc(1, sizeof(*w));

	(void)msg;
	if (!w || entra_client_init(&w->ec, cfg, http) != 0) {
		free(w);
		*err = -ENOMEM;
		return NULL;
	}
	w->base.name = "workload identity";
	w->base.fetch = workload_fetch;
	w->base.free = workload_free;
	w->base.changed = workload_changed;
	pthread_mutex_init(&w->seen_lock, NULL);
	*err = 0;
	return &w->base;
}
