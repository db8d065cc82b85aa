/* SPDX-License-Identifier: MIT */
/*
 * Token cache with ahead-of-expiry, single-flight refresh.
 *
 * State machine, guarded by a->lock:
 *   - a valid token is handed out (copied) to every caller;
 *   - from refresh_at on, the first caller becomes the refresher (refreshing
 *     = true) and fetches outside the lock; the others keep getting the old
 *     token while it is valid, or wait on `changed` when there is none;
 *   - a failed fetch sets next_attempt (exponential backoff), during which
 *     no new fetch starts: a broken token endpoint never sees a storm.
 * The lock is never held across network I/O.
 */
#include "config.h"

#include "auth/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "auth/credential.h"
#include "base/log.h"
#include "base/url.h"
#include "http/http.h"

#define DEFAULT_AUTHORITY "https://login.microsoftonline.com/"
#define DEFAULT_GRAPH	  "https://graph.microsoft.com/v1.0"
#define DEFAULT_IMDS	  "http://169.254.169.254"
/* Attempts one fetch makes when there is no valid token to fall back on. */
#define COLD_ATTEMPTS 3

static const char *const kind_names[] = {"auto", "workload", "managed",
					 "certificate", "secret"};

const char *auth_kind_name(enum auth_kind kind)
{
	return (unsigned)kind < 5 ? kind_names[kind] : "?";
}

const char *auth_kind_description(enum auth_kind kind)
{
	static const char *const desc[] = {
	    "automatic", "workload identity", "managed identity",
	    "client certificate", "client secret"};

	return (unsigned)kind < 5 ? desc[kind] : "?";
}

int auth_kind_parse(const char *name, enum auth_kind *out)
{
	for (unsigned i = 0; i < 5; i++) {
		if (strcasecmp(name, kind_names[i]) == 0) {
			*out = (enum auth_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

void auth_config_init(struct auth_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
}

static void free_secret_str(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void auth_config_release(struct auth_config *cfg)
{
	char **fields[] = {&cfg->why,		&cfg->client_id,
			   &cfg->tenant_id,	&cfg->authority_host,
			   &cfg->token_file,	&cfg->cert_path,
			   &cfg->cert_key_path, &cfg->secret_file,
			   &cfg->imds_url,	&cfg->imds_client_id,
			   &cfg->graph_url,	&cfg->scope};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		free(*fields[i]);
		*fields[i] = NULL;
	}
	free_secret_str(&cfg->secret);
	cfg->scope_from = NULL;
}

/* Sets *field from the environment (non-empty values only) when unset. */
static int fill(char **field, auth_getenv_fn getenv_fn, const char *name)
{
	if (*field)
		return 0;
	const char *v = getenv_fn(name);
	if (!v || !*v)
		return 0;
	*field = strdup(v);
	return *field ? 0 : -ENOMEM;
}

static int set_default(char **field, const char *value)
{
	if (*field)
		return 0;
	*field = strdup(value);
	return *field ? 0 : -ENOMEM;
}

static int set_why(struct auth_config *cfg, const char *why)
{
	free(cfg->why);
	cfg->why = strdup(why);
	return cfg->why ? 0 : -ENOMEM;
}

/* Tenant ids are GUIDs or domain names: ^[0-9a-zA-Z-.]+$ (as azidentity). */
static int tenant_valid(const char *t)
{
	if (!*t)
		return 0;
	for (; *t; t++)
		if (!((*t >= '0' && *t <= '9') || (*t >= 'a' && *t <= 'z') ||
		      (*t >= 'A' && *t <= 'Z') || *t == '-' || *t == '.'))
			return 0;
	return 1;
}

static int require(const struct auth_config *cfg, const char *value,
		   const char *variable, struct buf *msg)
{
	if (value)
		return 0;
	buf_reset(msg);
	if (cfg->kind == AUTH_WORKLOAD)
		buf_appendf(msg,
			    "workload identity needs %s, which is not set: the "
			    "AKS workload identity "
			    "webhook injects it into pods labelled "
			    "azure.workload.identity/use: \"true\" "
			    "whose service account is annotated "
			    "azure.workload.identity/client-id",
			    variable);
	else
		buf_appendf(msg, "%s credential needs %s, which is not set",
			    auth_kind_name(cfg->kind), variable);
	return -EINVAL;
}

static int check_https(const char *what, const char *url, bool allow_http,
		       struct buf *msg)
{
	if (strncasecmp(url, "https://", 8) == 0)
		return 0;
	if (allow_http && strncasecmp(url, "http://", 7) == 0)
		return 0;
	buf_reset(msg);
	buf_appendf(msg,
		    "%s '%s' is not an https:// URL (plain http is accepted "
		    "only with -o allow_http, for tests)",
		    what, url);
	return -EINVAL;
}

/* The client-credentials scope: -o scope as given (RESOURCE/.default), or
 * graph_url's origin + "/.default". A Graph behind a gateway (API
 * Management, a proxy) has an origin that is no resource Entra knows
 * (AADSTS500011): such setups name the resource with -o scope. */
static int resolve_scope(struct auth_config *cfg, bool graph_url_given,
			 struct buf *msg)
{
	static const char suffix[] = "/.default";

	if (cfg->scope) {
		size_t n = strlen(cfg->scope);
		if (n <= sizeof(suffix) - 1 ||
		    strcmp(cfg->scope + n - (sizeof(suffix) - 1), suffix) !=
			0 ||
		    strchr(cfg->scope, ' ') || !strstr(cfg->scope, "://")) {
			buf_reset(msg);
			buf_appendf(msg,
				    "-o scope=%s: expected RESOURCE/.default, "
				    "the resource the token is for, such as "
				    "https://graph.microsoft.com/.default",
				    cfg->scope);
			return -EINVAL;
		}
		cfg->scope_from = "-o scope";
		return 0;
	}
	cfg->scope = url_scope_for_resource(cfg->graph_url);
	if (!cfg->scope) {
		buf_reset(msg);
		buf_appendf(msg, "-o graph_url=%s is not a URL",
			    cfg->graph_url);
		return -EINVAL;
	}
	cfg->scope_from = graph_url_given
			      ? "derived from -o graph_url (set -o scope for "
				"a gateway or another host)"
			      : "the default, for graph.microsoft.com";
	return 0;
}

int auth_config_resolve(struct auth_config *cfg, auth_getenv_fn getenv_fn,
			struct buf *msg)
{
	int err = 0;

	err = err ? err : fill(&cfg->client_id, getenv_fn, "AZURE_CLIENT_ID");
	err = err ? err : fill(&cfg->tenant_id, getenv_fn, "AZURE_TENANT_ID");
	err =
	    err ? err
		: fill(&cfg->authority_host, getenv_fn, "AZURE_AUTHORITY_HOST");
	err = err ? err
		  : fill(&cfg->token_file, getenv_fn,
			 "AZURE_FEDERATED_TOKEN_FILE");
	err = err ? err
		  : fill(&cfg->cert_path, getenv_fn,
			 "AZURE_CLIENT_CERTIFICATE_PATH");
	if (!err && !cfg->secret_file)
		err = fill(&cfg->secret, getenv_fn, "AZURE_CLIENT_SECRET");
	bool graph_url_given = cfg->graph_url != NULL;
	err = err ? err : set_default(&cfg->authority_host, DEFAULT_AUTHORITY);
	err = err ? err : set_default(&cfg->graph_url, DEFAULT_GRAPH);
	err = err ? err : set_default(&cfg->imds_url, DEFAULT_IMDS);
	if (err)
		return err;

	if (cfg->kind == AUTH_AUTO) {
		/* The Azure SDK's DefaultAzureCredential order. */
		if (cfg->secret || cfg->secret_file) {
			cfg->kind = AUTH_SECRET;
			err = set_why(cfg, cfg->secret_file
					       ? "a client secret file was "
						 "given (-o secret_file)"
					       : "AZURE_CLIENT_SECRET is set");
		} else if (cfg->cert_path) {
			cfg->kind = AUTH_CERTIFICATE;
			err = set_why(
			    cfg, "a client certificate is configured "
				 "(AZURE_CLIENT_CERTIFICATE_PATH or -o cert)");
		} else if (cfg->token_file) {
			cfg->kind = AUTH_WORKLOAD;
			err = set_why(cfg, "AZURE_FEDERATED_TOKEN_FILE is set: "
					   "AKS workload identity");
		} else {
			cfg->kind = AUTH_MANAGED;
			err =
			    set_why(cfg, "no secret, certificate or federated "
					 "token in the environment; trying the "
					 "instance's managed identity");
		}
	} else {
		err = set_why(cfg, "chosen with -o auth");
	}
	if (err)
		return err;
	if (cfg->kind == AUTH_MANAGED && !cfg->imds_client_id &&
	    cfg->client_id) {
		cfg->imds_client_id = strdup(cfg->client_id);
		if (!cfg->imds_client_id)
			return -ENOMEM;
	}

	err = check_https("-o graph_url", cfg->graph_url, cfg->allow_http, msg);
	if (err)
		return err;
	err = resolve_scope(cfg, graph_url_given, msg);
	if (err)
		return err;
	if (cfg->kind == AUTH_MANAGED)
		return 0;

	err = check_https("AZURE_AUTHORITY_HOST", cfg->authority_host,
			  cfg->allow_http, msg);
	err = err ? err : require(cfg, cfg->client_id, "AZURE_CLIENT_ID", msg);
	err = err ? err : require(cfg, cfg->tenant_id, "AZURE_TENANT_ID", msg);
	if (!err && !tenant_valid(cfg->tenant_id)) {
		buf_reset(msg);
		buf_appendf(msg,
			    "AZURE_TENANT_ID '%s' is not a tenant id (a GUID "
			    "or a domain name)",
			    cfg->tenant_id);
		err = -EINVAL;
	}
	if (!err && cfg->kind == AUTH_WORKLOAD)
		err = require(cfg, cfg->token_file,
			      "AZURE_FEDERATED_TOKEN_FILE", msg);
	if (!err && cfg->kind == AUTH_CERTIFICATE)
		err = require(cfg, cfg->cert_path,
			      "AZURE_CLIENT_CERTIFICATE_PATH (or -o cert=PATH)",
			      msg);
	if (!err && cfg->kind == AUTH_SECRET && !cfg->secret &&
	    !cfg->secret_file)
		err =
		    require(cfg, NULL,
			    "AZURE_CLIENT_SECRET or -o secret_file=PATH", msg);
	return err;
}

/* ---- refresh policy ------------------------------------------------------ */

long long auth_refresh_at(long long obtained, long long expires_in,
			  long long refresh_in)
{
	if (refresh_in > 0 && refresh_in < expires_in)
		return obtained + refresh_in;
	/* Five minutes ahead, but never more than half the lifetime, so short
	 * test tokens (60 s) refresh at half-life instead of at once. */
	long long margin = expires_in / 2 < 300 ? expires_in / 2 : 300;
	long long at = obtained + expires_in - margin;
	if (expires_in > 7200 && obtained + expires_in / 2 < at)
		at = obtained + expires_in / 2;
	return at;
}

double auth_backoff_seconds(unsigned attempt, double jitter)
{
	double d = 1.0;

	for (unsigned i = 1; i < attempt && d < 60.0; i++)
		d *= 2.0;
	if (d > 60.0)
		d = 60.0;
	return d * (0.8 + 0.4 * jitter);
}

/* ---- the cache ------------------------------------------------------------
 */

struct auth {
	struct auth_config cfg; /* deep copy, owned */
	struct credential *cred;
	struct http *http; /* borrowed; NULL with a test credential */
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct buf token;     /* secret; empty when none */
	long long expires_at; /* epoch s */
	double usable_until;  /* expires_at less slack for a request's flight */
	long long refresh_at; /* epoch s */
	bool refreshing;
	unsigned failures;   /* consecutive */
	double next_attempt; /* epoch s (fractional) before which no fetch
				starts */
	int last_err;
	struct buf last_msg;   /* last failure, for auth_last_error */
	struct buf logged_msg; /* last failure logged, to log each once */
	struct auth_stats stats;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double jitter01(void)
{
	unsigned r = 0;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (unsigned)rand();
	return (double)(r % 1000000) / 1000000.0;
}

static char *dup_or_null(const char *s, int *err)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*err = -ENOMEM;
	return d;
}

static int config_copy(struct auth_config *dst, const struct auth_config *src)
{
	int err = 0;

	auth_config_init(dst);
	dst->kind = src->kind;
	dst->allow_http = src->allow_http;
	dst->why = dup_or_null(src->why, &err);
	dst->client_id = dup_or_null(src->client_id, &err);
	dst->tenant_id = dup_or_null(src->tenant_id, &err);
	dst->authority_host = dup_or_null(src->authority_host, &err);
	dst->token_file = dup_or_null(src->token_file, &err);
	dst->cert_path = dup_or_null(src->cert_path, &err);
	dst->cert_key_path = dup_or_null(src->cert_key_path, &err);
	dst->secret_file = dup_or_null(src->secret_file, &err);
	dst->secret = dup_or_null(src->secret, &err);
	dst->imds_url = dup_or_null(src->imds_url, &err);
	dst->imds_client_id = dup_or_null(src->imds_client_id, &err);
	dst->graph_url = dup_or_null(src->graph_url, &err);
	dst->scope = dup_or_null(src->scope, &err);
	dst->scope_from = src->scope_from;
	return err;
}

/* An auth with its own copy of cfg and no source yet. */
static struct auth *auth_alloc(const struct auth_config *cfg, int *err)
{
	struct auth *a = calloc(1, sizeof(*a));

	if (!a) {
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->changed, NULL);
	buf_init_secret(&a->token, 64 * 1024);
	buf_init(&a->last_msg, 4096);
	buf_init(&a->logged_msg, 4096);
	*err = config_copy(&a->cfg, cfg);
	if (*err) {
		auth_free(a);
		return NULL;
	}
	return a;
}

struct auth *auth_new_with_credential(const struct auth_config *cfg,
				      struct credential *cred, int *err)
{
	struct auth *a = auth_alloc(cfg, err);

	if (!a) {
		cred->free(cred);
		return NULL;
	}
	a->cred = cred;
	return a;
}

struct auth *auth_new(const struct auth_config *cfg, struct http *http,
		      int *err)
{
	struct auth *a = auth_alloc(cfg, err);
	struct buf msg;

	if (!a)
		return NULL;
	buf_init(&msg, 4096);
	a->http = http;
	/* Sources borrow the auth's own copy of the config. */
	switch (a->cfg.kind) {
	case AUTH_WORKLOAD:
		a->cred = credential_workload_new(&a->cfg, http, &msg, err);
		break;
	case AUTH_MANAGED:
		a->cred = credential_imds_new(&a->cfg, http, &msg, err);
		break;
	case AUTH_CERTIFICATE:
		a->cred = credential_certificate_new(&a->cfg, http, &msg, err);
		break;
	case AUTH_SECRET:
		a->cred = credential_secret_new(&a->cfg, http, &msg, err);
		break;
	default:
		*err = -EINVAL;
		buf_append_str(
		    &msg,
		    "no credential kind chosen (resolve the config first)");
	}
	if (!a->cred) {
		if (msg.len)
			log_error("%s", msg.data);
		auth_free(a);
		a = NULL;
	}
	buf_release(&msg);
	return a;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	if (a->cred)
		a->cred->free(a->cred);
	auth_config_release(&a->cfg);
	buf_release(&a->token);
	buf_release(&a->last_msg);
	buf_release(&a->logged_msg);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->changed);
	free(a);
}

/* Seconds before expiry a token stops being handed out, for a request's
 * flight: 5 s, less for very short test tokens. */
static double token_slack(long long expires_in)
{
	return expires_in / 10.0 < 5.0 ? expires_in / 10.0 : 5.0;
}

/* Valid = usable for a request now, with a little slack for its flight. */
static bool token_valid_locked(const struct auth *a, double now)
{
	return a->token.len > 0 && now < a->usable_until;
}

/* Logs a failure once per distinct message, so a persistent problem does not
 * flood the log while still announcing every new one. */
static void note_failure_locked(struct auth *a, int err, const char *msg)
{
	a->last_err = err;
	buf_reset(&a->last_msg);
	buf_append_str(&a->last_msg, msg);
	if (strcmp(buf_str(&a->logged_msg), msg) != 0) {
		buf_reset(&a->logged_msg);
		buf_append_str(&a->logged_msg, msg);
		log_msg(err == -EAGAIN ? LOG_WARN : LOG_ERROR, "%s: %s",
			a->cred->name, msg);
	}
}

/* Fetches outside the lock. Cold fetches (no valid token to fall back on)
 * retry transient failures a few times before giving up. */
static int fetch_unlocked(struct auth *a, bool cold, struct token_grant *grant,
			  struct buf *msg, unsigned long *requests)
{
	int err = -EAGAIN;

	for (unsigned attempt = 1; attempt <= (cold ? COLD_ATTEMPTS : 1);
	     attempt++) {
		if (attempt > 1) {
			double d =
			    auth_backoff_seconds(attempt - 1, jitter01());
			struct timespec ts = {(time_t)d,
					      (long)((d - (long)d) * 1e9)};
			/* Ends early when shutting down (then the fetch
			 * fails at once). */
			if (a->http)
				http_sleep(a->http, d);
			else
				nanosleep(&ts, NULL);
		}
		(*requests)++;
		err = a->cred->fetch(a->cred, grant, msg);
		if (err != -EAGAIN)
			break;
		log_debug("%s: transient failure (attempt %u): %s",
			  a->cred->name, attempt, buf_str(msg));
	}
	return err;
}

int auth_token(struct auth *a, struct buf *out)
{
	int err = 0;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		double now = now_s();
		bool valid = token_valid_locked(a, now);

		if (valid && (now < (double)a->refresh_at || a->refreshing ||
			      now < a->next_attempt))
			goto copy;
		if (a->refreshing) {
			pthread_cond_wait(&a->changed, &a->lock);
			continue;
		}
		if (!valid && now < a->next_attempt && a->cred->changed &&
		    a->cred->changed(a->cred)) {
			/* The backoff was for the old input: try the new one
			 * now rather than fail for up to a minute more. */
			log_info("%s: the credential changed since the last "
				 "failure; trying it now",
				 a->cred->name);
			a->next_attempt = 0;
		}
		if (!valid && now < a->next_attempt) {
			/* Backing off with nothing to serve: fail fast. */
			err = a->last_err ? a->last_err : -EAGAIN;
			goto unlock;
		}

		/* This caller refreshes; others use the old token or wait. */
		struct token_grant grant;
		struct buf msg;
		unsigned long requests = 0;

		a->refreshing = true;
		pthread_mutex_unlock(&a->lock);
		token_grant_init(&grant);
		buf_init(&msg, 4096);
		int ferr = fetch_unlocked(a, !valid, &grant, &msg, &requests);
		/* A token dead on arrival counts as a failure, with its
		 * backoff: taking it would send every caller back here at
		 * once, a storm on the token endpoint. */
		if (ferr == 0 && (double)(grant.obtained + grant.expires_in) -
					 token_slack(grant.expires_in) <=
				     now_s()) {
			buf_reset(&msg);
			buf_appendf(&msg,
				    "the token endpoint answered with a token "
				    "that expires at once (expires_in %lld)",
				    grant.expires_in);
			ferr = -EAGAIN;
		}
		pthread_mutex_lock(&a->lock);
		a->refreshing = false;
		a->stats.token_requests += requests;
		if (ferr == 0) {
			buf_reset(&a->token);
			ferr = buf_append(&a->token, grant.token.data,
					  grant.token.len);
		}
		if (ferr == 0) {
			a->expires_at = grant.obtained + grant.expires_in;
			a->usable_until = (double)a->expires_at -
					  token_slack(grant.expires_in);
			a->refresh_at = auth_refresh_at(
			    grant.obtained, grant.expires_in, grant.refresh_in);
			a->failures = 0;
			a->next_attempt = 0;
			a->last_err = 0;
			buf_reset(&a->last_msg);
			buf_reset(&a->logged_msg);
			log_info("%s: access token obtained, valid for %lld s, "
				 "refresh in %lld s",
				 a->cred->name, grant.expires_in,
				 a->refresh_at - grant.obtained);
		} else {
			a->failures++;
			a->stats.token_failures++;
			a->next_attempt =
			    now_s() +
			    auth_backoff_seconds(a->failures, jitter01());
			note_failure_locked(a, ferr, buf_str(&msg));
		}
		token_grant_release(&grant);
		buf_release(&msg);
		pthread_cond_broadcast(&a->changed);
		if (ferr == 0 || token_valid_locked(a, now_s()))
			continue;
		err = ferr;
		goto unlock;
	}
copy:
	err = buf_append(out, a->token.data, a->token.len);
unlock:
	pthread_mutex_unlock(&a->lock);
	return err;
}

void auth_invalidate(struct auth *a, const char *token)
{
	pthread_mutex_lock(&a->lock);
	if (a->token.len && strcmp(a->token.data, token) == 0) {
		buf_reset(&a->token);
		a->expires_at = 0;
		a->usable_until = 0;
		a->refresh_at = 0;
		a->next_attempt = 0;
		a->stats.invalidations++;
		log_info("%s: the resource rejected the access token; fetching "
			 "a new one",
			 a->cred->name);
	}
	pthread_mutex_unlock(&a->lock);
}

const char *auth_last_error(struct auth *a)
{
	/* Callers read it right after a failed auth_token() on their thread;
	 * a racing refresh could change it, which only affects wording. */
	return buf_str(&a->last_msg);
}

void auth_get_stats(struct auth *a, struct auth_stats *out)
{
	pthread_mutex_lock(&a->lock);
	*out = a->stats;
	out->expires_at = a->token.len ? a->expires_at : 0;
	pthread_mutex_unlock(&a->lock);
}
