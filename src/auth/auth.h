/* SPDX-License-Identifier: MIT */
#ifndef SPFS_AUTH_AUTH_H
#define SPFS_AUTH_AUTH_H

/*
 * Access tokens for Microsoft Graph.
 *
 * A `struct auth` holds one credential source (workload identity, managed
 * identity through IMDS, client certificate or client secret) and the current
 * access token, in memory only. auth_token() hands out a copy of a valid
 * token; a refresh happens ahead of expiry, at most one at a time, while other
 * callers keep using the old token as long as it is valid.
 *
 * Secrets (tokens, assertions, client secrets) are wiped when freed and are
 * never logged.
 */

#include <stdbool.h>

#include "base/buf.h"

struct http;

enum auth_kind {
	AUTH_AUTO = 0,
	AUTH_WORKLOAD,
	AUTH_MANAGED,
	AUTH_CERTIFICATE,
	AUTH_SECRET,
};

/* All strings are owned by the config (auth_config_release frees them). */
struct auth_config {
	enum auth_kind kind;  /* after auth_config_resolve: never AUTH_AUTO */
	char *why;	      /* why this kind was chosen (for the log) */
	char *client_id;      /* AZURE_CLIENT_ID */
	char *tenant_id;      /* AZURE_TENANT_ID */
	char *authority_host; /* AZURE_AUTHORITY_HOST, default public cloud */
	char *token_file;     /* AZURE_FEDERATED_TOKEN_FILE */
	char *cert_path;      /* AZURE_CLIENT_CERTIFICATE_PATH or -o cert= */
	char *cert_key_path;  /* -o cert_key= (NULL: key in cert_path) */
	char *secret_file;    /* -o secret_file= */
	char *secret;	      /* AZURE_CLIENT_SECRET (wiped on release) */
	char *imds_url;	      /* default http://169.254.169.254 */
	char *imds_client_id; /* -o imds_client_id=, else AZURE_CLIENT_ID */
	char *graph_url;      /* default https://graph.microsoft.com/v1.0 */
	char *scope; /* -o scope=RESOURCE/.default; after resolve never NULL */
	const char *scope_from; /* after resolve: where the scope came from */
	bool allow_http;	/* test-only: accept http:// endpoints */
};

void auth_config_init(struct auth_config *cfg);
void auth_config_release(struct auth_config *cfg);

/* Looks a variable up; tests pass a fake environment. */
typedef const char *(*auth_getenv_fn)(const char *name);

/*
 * Fills unset fields from the environment (AZURE_*), then picks the
 * credential when kind is AUTH_AUTO, in the Azure SDK's order: an explicit
 * credential in the environment (secret, then certificate), then workload
 * identity, then managed identity. Checks that the chosen kind has what it
 * needs. The token scope is -o scope when given (it must be
 * RESOURCE/.default), else derived from graph_url's origin; scope_from says
 * which, for --check. Returns 0, or -EINVAL with one actionable line in *msg
 * (which variable is missing and how a pod gets it), or -ENOMEM.
 */
int auth_config_resolve(struct auth_config *cfg, auth_getenv_fn getenv_fn,
			struct buf *msg);

const char *auth_kind_name(enum auth_kind kind);
/* "workload identity", "managed identity", "client certificate", ... */
const char *auth_kind_description(enum auth_kind kind);
/* "auto|workload|managed|certificate|secret" -> kind; -EINVAL otherwise. */
int auth_kind_parse(const char *name, enum auth_kind *out);

struct auth;

/* The config is copied. Returns NULL + *err (-ENOMEM, -EINVAL with a log line
 * for an unusable certificate or secret file). */
struct auth *auth_new(const struct auth_config *cfg, struct http *http,
		      int *err);
void auth_free(struct auth *a);

/*
 * Appends a valid access token to out (use a secret buf). May block while a
 * token is fetched. Returns 0; -EACCES when the credential was refused
 * (a message was logged, once per distinct failure); -EAGAIN when the token
 * endpoint is failing transiently and no valid token is left; -ENOMEM.
 */
int auth_token(struct auth *a, struct buf *out);

/*
 * The resource rejected this token (Graph 401 InvalidAuthenticationToken):
 * drop it if it is still the current one, so the next auth_token() fetches a
 * fresh one. A token already replaced by a refresh is left alone.
 */
void auth_invalidate(struct auth *a, const char *token);

/* The message of the last failure, "" if none. Borrowed until next call. */
const char *auth_last_error(struct auth *a);

/* Counters for metrics and tests. */
struct auth_stats {
	unsigned long token_requests; /* requests sent to the token endpoint */
	unsigned long token_failures;
	unsigned long invalidations;
	long long
	    expires_at; /* epoch seconds of the current token, 0 if none */
};
void auth_get_stats(struct auth *a, struct auth_stats *out);

/* Refresh policy (pure; exposed for tests). All times in epoch seconds.
 * refresh_in <= 0 means the server sent none. */
long long auth_refresh_at(long long obtained, long long expires_in,
			  long long refresh_in);
/* Delay before retry number `attempt` (1-based) after transient failures:
 * exponential from 1 s, capped at 60 s, with +-20% jitter from `jitter`
 * (a value in [0,1)). */
double auth_backoff_seconds(unsigned attempt, double jitter);

#endif
