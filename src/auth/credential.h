/* SPDX-License-Identifier: MIT */
#ifndef SPFS_AUTH_CREDENTIAL_H
#define SPFS_AUTH_CREDENTIAL_H

/*
 * The interface every credential source implements (internal to src/auth).
 * A source knows how to obtain one access token; caching, refresh timing and
 * single-flight belong to auth.c.
 */

#include <stdbool.h>

#include "auth/auth.h"
#include "base/buf.h"

struct http;

struct token_grant {
	struct buf token;     /* secret buf, the access token */
	long long obtained;   /* epoch seconds when the request was sent */
	long long expires_in; /* seconds */
	long long refresh_in; /* seconds, 0 when the server gave no hint */
};

void token_grant_init(struct token_grant *g);
void token_grant_release(struct token_grant *g);

/*
 * Outcomes of fetch():
 *   0        *grant filled
 *   -EACCES  refused by the identity provider; *msg says why, actionably
 *   -EAGAIN  transient (5xx, 429, timeouts, connection errors); *msg says what
 *   -ENOMEM
 */
struct credential {
	const char *name; /* "workload identity", ... */
	int (*fetch)(struct credential *c, struct token_grant *grant,
		     struct buf *msg);
	void (*free)(struct credential *c);
	/* Optional: true when what fetch() reads (a token file) changed since
	 * its last read, so a failure's backoff need not wait: someone fixed
	 * it, or the kubelet rotated it. Called with auth's lock held: cheap
	 * (a stat), never the network. */
	bool (*changed)(struct credential *c);
};

/* Constructors borrow cfg and http for the credential's lifetime.
 * NULL + *err (-ENOMEM, -EINVAL with *msg) on failure. */
struct credential *credential_workload_new(const struct auth_config *cfg,
					   struct http *http, struct buf *msg,
					   int *err);
struct credential *credential_imds_new(const struct auth_config *cfg,
				       struct http *http, struct buf *msg,
				       int *err);
struct credential *credential_certificate_new(const struct auth_config *cfg,
					      struct http *http,
					      struct buf *msg, int *err);
struct credential *credential_secret_new(const struct auth_config *cfg,
					 struct http *http, struct buf *msg,
					 int *err);

/* Builds a struct auth around a given source (tests use a fake). Takes
 * ownership of cred, also on failure. */
struct auth *auth_new_with_credential(const struct auth_config *cfg,
				      struct credential *cred, int *err);

/* The most memory a parse of a token endpoint's or a JWT's JSON may take
 * (json_cost.h); real ones take a few KiB. */
#define AUTH_JSON_COST_MAX (4u << 20)

/* The longest lifetime believed (Entra's longest tokens live about a day):
 * a longer expires_in is clamped to it. */
#define TOKEN_LIFETIME_MAX (2 * 86400LL)

/*
 * Parses a token success body (Entra v2 or IMDS shape: expires_in, refresh_in
 * and expires_on as numbers or strings). Lifetimes are clamped to
 * TOKEN_LIFETIME_MAX; a refresh_in not below the lifetime is ignored.
 * Returns 0 or -EINVAL (malformed, wrong types, no lifetime).
 */
int token_response_parse(const char *body, size_t len, long long now,
			 struct token_grant *grant);

/* Context for the actionable message of an Entra failure. */
struct entra_error_context;

/*
 * POSTs a client_credentials form to the Entra v2 token endpoint and parses
 * the answer. *aadsts receives the AADSTS code of a refusal (0 otherwise),
 * so a source can react to one (700024: re-read the token file).
 * Returns as fetch() does.
 */
struct entra_client;
int entra_token_post(const struct entra_client *ec, const struct buf *form,
		     const struct entra_error_context *ctx,
		     struct token_grant *grant, long *aadsts, struct buf *msg);

/* What the Entra-based sources (workload, certificate, secret) share: the
 * v2 token URL {authority}/{tenant}/oauth2/v2.0/token joined with exactly one
 * slash, and the scope {graph resource}/.default. */
struct entra_client {
	const struct auth_config *cfg; /* borrowed */
	struct http *http;	       /* borrowed */
	char *token_url;
	char *scope;
};

/* Returns 0 or -ENOMEM. */
int entra_client_init(struct entra_client *ec, const struct auth_config *cfg,
		      struct http *http);
void entra_client_release(struct entra_client *ec);

#endif
