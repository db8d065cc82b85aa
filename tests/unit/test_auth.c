/* SPDX-License-Identifier: MIT */
/* Refresh policy, credential selection from the environment, and the
 * single-flight token cache driven by a fake credential source. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/credential.h"
#include "base/log.h"

/* ---- policy ----------------------------------------------------------------
 */

static void test_refresh_at(void **state)
{
	(void)state;
	/* Typical 1 h token: five minutes ahead. */
	assert_int_equal(auth_refresh_at(1000, 3599, 0), 1000 + 3599 - 300);
	/* 24 h managed-identity token: at half-life. */
	assert_int_equal(auth_refresh_at(0, 86400, 0), 43200);
	/* 2 h exactly is not "over 2 h": five minutes ahead. */
	assert_int_equal(auth_refresh_at(0, 7200, 0), 6900);
	/* Short test tokens: at half-life, never immediately. */
	assert_int_equal(auth_refresh_at(0, 60, 0), 30);
	assert_int_equal(auth_refresh_at(0, 1, 0), 1);
	/* refresh_in wins when the server sends it and it is sane. */
	assert_int_equal(auth_refresh_at(100, 3600, 1800), 1900);
	assert_int_equal(auth_refresh_at(100, 3600, 7200), 100 + 3300);
}

static void test_backoff(void **state)
{
	(void)state;
	assert_true(auth_backoff_seconds(1, 0.5) > 0.99 &&
		    auth_backoff_seconds(1, 0.5) < 1.01);
	assert_true(auth_backoff_seconds(2, 0.5) > 1.99 &&
		    auth_backoff_seconds(2, 0.5) < 2.01);
	assert_true(auth_backoff_seconds(4, 0.5) > 7.99 &&
		    auth_backoff_seconds(4, 0.5) < 8.01);
	/* Capped at a minute, jitter within +-20%. */
	assert_true(auth_backoff_seconds(30, 0.5) > 59.9 &&
		    auth_backoff_seconds(30, 0.5) < 60.1);
	assert_true(auth_backoff_seconds(30, 0.0) >= 48.0);
	assert_true(auth_backoff_seconds(30, 0.999) <= 72.0);
}

/* ---- selection
 * --------------------------------------------------------------- */

static const char *const *fake_env;

static const char *fake_getenv(const char *name)
{
	for (const char *const *e = fake_env; e && *e; e += 2)
		if (strcmp(e[0], name) == 0)
			return e[1];
	return NULL;
}

static int resolve(struct auth_config *cfg, const char *const *env,
		   struct buf *msg)
{
	fake_env = env;
	buf_reset(msg);
	return auth_config_resolve(cfg, fake_getenv, msg);
}

static const char *const aks_env[] = {
    "AZURE_CLIENT_ID",
    "11111111-2222-3333-4444-555555555555",
    "AZURE_TENANT_ID",
    "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "AZURE_AUTHORITY_HOST",
    "https://login.microsoftonline.com/",
    "AZURE_FEDERATED_TOKEN_FILE",
    "/var/run/secrets/azure/tokens/azure-identity-token",
    NULL};

static void test_auto_picks_workload_on_aks(void **state)
{
	struct auth_config cfg;
	struct buf msg;

	(void)state;
	buf_init(&msg, 4096);
	auth_config_init(&cfg);
	assert_int_equal(resolve(&cfg, aks_env, &msg), 0);
	assert_int_equal(cfg.kind, AUTH_WORKLOAD);
	assert_non_null(strstr(cfg.why, "AZURE_FEDERATED_TOKEN_FILE"));
	assert_string_equal(cfg.graph_url, "https://graph.microsoft.com/v1.0");
	assert_string_equal(cfg.authority_host,
			    "https://login.microsoftonline.com/");
	auth_config_release(&cfg);
	buf_release(&msg);
}

static void test_auto_order(void **state)
{
	const char *const with_secret[] = {"AZURE_CLIENT_ID",
					   "c",
					   "AZURE_TENANT_ID",
					   "t",
					   "AZURE_FEDERATED_TOKEN_FILE",
					   "/f",
					   "AZURE_CLIENT_CERTIFICATE_PATH",
					   "/c.pem",
					   "AZURE_CLIENT_SECRET",
					   "s3cret",
					   NULL};
	const char *const with_cert[] = {"AZURE_CLIENT_ID",
					 "c",
					 "AZURE_TENANT_ID",
					 "t",
					 "AZURE_FEDERATED_TOKEN_FILE",
					 "/f",
					 "AZURE_CLIENT_CERTIFICATE_PATH",
					 "/c.pem",
					 NULL};
	const char *const nothing[] = {NULL};
	const char *const empty_values[] = {
	    "AZURE_CLIENT_SECRET", "", "AZURE_FEDERATED_TOKEN_FILE", "", NULL};
	struct auth_config cfg;
	struct buf msg;

	(void)state;
	buf_init(&msg, 4096);
	auth_config_init(&cfg);
	assert_int_equal(resolve(&cfg, with_secret, &msg), 0);
	assert_int_equal(cfg.kind, AUTH_SECRET);
	auth_config_release(&cfg);

	auth_config_init(&cfg);
	assert_int_equal(resolve(&cfg, with_cert, &msg), 0);
	assert_int_equal(cfg.kind, AUTH_CERTIFICATE);
	auth_config_release(&cfg);

	auth_config_init(&cfg);
	assert_int_equal(resolve(&cfg, nothing, &msg), 0);
	assert_int_equal(cfg.kind, AUTH_MANAGED);
	assert_string_equal(cfg.imds_url, "http://169.254.169.254");
	auth_config_release(&cfg);

	/* Empty values count as unset, as the webhook never injects them. */
	auth_config_init(&cfg);
	assert_int_equal(resolve(&cfg, empty_values, &msg), 0);
	assert_int_equal(cfg.kind, AUTH_MANAGED);
	auth_config_release(&cfg);
	buf_release(&msg);
}

static void test_explicit_kind_and_overrides(void **state)
{
	struct auth_config cfg;
	struct buf msg;

	(void)state;
	buf_init(&msg, 4096);
	auth_config_init(&cfg);
	cfg.kind = AUTH_MANAGED;
	cfg.client_id = strdup("override");
	assert_int_equal(resolve(&cfg, aks_env, &msg), 0);
	assert_int_equal(cfg.kind, AUTH_MANAGED);
	/* An explicit option beats the environment. */
	assert_string_equal(cfg.client_id, "override");
	assert_string_equal(cfg.imds_client_id, "override");
	assert_non_null(strstr(cfg.why, "-o auth"));
	auth_config_release(&cfg);
	buf_release(&msg);
}

/* The token scope: as given (RESOURCE/.default only), or derived from
 * graph_url, and --check can say which. */
static void test_scope(void **state)
{
	struct auth_config cfg;
	struct buf msg;

	(void)state;
	buf_init(&msg, 4096);
	auth_config_init(&cfg);
	assert_int_equal(resolve(&cfg, aks_env, &msg), 0);
	assert_string_equal(cfg.scope, "https://graph.microsoft.com/.default");
	assert_non_null(strstr(cfg.scope_from, "default"));
	auth_config_release(&cfg);

	auth_config_init(&cfg);
	cfg.graph_url = strdup("https://apim.contoso.net:8443/graph/v1.0");
	assert_int_equal(resolve(&cfg, aks_env, &msg), 0);
	assert_string_equal(cfg.scope,
			    "https://apim.contoso.net:8443/.default");
	assert_non_null(strstr(cfg.scope_from, "derived from -o graph_url"));
	auth_config_release(&cfg);

	auth_config_init(&cfg);
	cfg.graph_url = strdup("https://apim.contoso.net/graph/v1.0");
	cfg.scope = strdup("https://graph.microsoft.com/.default");
	assert_int_equal(resolve(&cfg, aks_env, &msg), 0);
	assert_string_equal(cfg.scope, "https://graph.microsoft.com/.default");
	assert_string_equal(cfg.scope_from, "-o scope");
	auth_config_release(&cfg);

	const char *const bad[] = {"https://graph.microsoft.com",
				   "https://graph.microsoft.com/.default x",
				   "/.default", "Sites.Read.All"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		auth_config_init(&cfg);
		cfg.scope = strdup(bad[i]);
		buf_reset(&msg);
		assert_int_equal(resolve(&cfg, aks_env, &msg), -EINVAL);
		assert_non_null(
		    strstr(buf_str(&msg), "expected RESOURCE/.default"));
		auth_config_release(&cfg);
	}
	buf_release(&msg);
}

static void test_missing_variables_are_named(void **state)
{
	const char *const no_client[] = {
	    "AZURE_TENANT_ID", "t", "AZURE_FEDERATED_TOKEN_FILE", "/f", NULL};
	const char *const no_file[] = {"AZURE_CLIENT_ID", "c",
				       "AZURE_TENANT_ID", "t", NULL};
	struct auth_config cfg;
	struct buf msg;

	(void)state;
	buf_init(&msg, 4096);
	auth_config_init(&cfg);
	assert_int_equal(resolve(&cfg, no_client, &msg), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "AZURE_CLIENT_ID"));
	assert_non_null(
	    strstr(buf_str(&msg), "azure.workload.identity/use: \"true\""));
	auth_config_release(&cfg);

	auth_config_init(&cfg);
	cfg.kind = AUTH_WORKLOAD;
	assert_int_equal(resolve(&cfg, no_file, &msg), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "AZURE_FEDERATED_TOKEN_FILE"));
	auth_config_release(&cfg);
	buf_release(&msg);
}

static void test_http_refused_unless_allowed(void **state)
{
	const char *const env[] = {"AZURE_CLIENT_ID",
				   "c",
				   "AZURE_TENANT_ID",
				   "t",
				   "AZURE_AUTHORITY_HOST",
				   "http://127.0.0.1:9/",
				   "AZURE_FEDERATED_TOKEN_FILE",
				   "/f",
				   NULL};
	struct auth_config cfg;
	struct buf msg;

	(void)state;
	buf_init(&msg, 4096);
	auth_config_init(&cfg);
	assert_int_equal(resolve(&cfg, env, &msg), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "allow_http"));
	auth_config_release(&cfg);

	auth_config_init(&cfg);
	cfg.allow_http = true;
	assert_int_equal(resolve(&cfg, env, &msg), 0);
	auth_config_release(&cfg);

	auth_config_init(&cfg);
	cfg.graph_url = strdup("http://graph.example/v1.0");
	assert_int_equal(resolve(&cfg, aks_env, &msg), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "graph_url"));
	auth_config_release(&cfg);
	buf_release(&msg);
}

static void test_tenant_validated(void **state)
{
	const char *const env[] = {"AZURE_CLIENT_ID",
				   "c",
				   "AZURE_TENANT_ID",
				   "bad/tenant",
				   "AZURE_FEDERATED_TOKEN_FILE",
				   "/f",
				   NULL};
	struct auth_config cfg;
	struct buf msg;

	(void)state;
	buf_init(&msg, 4096);
	auth_config_init(&cfg);
	assert_int_equal(resolve(&cfg, env, &msg), -EINVAL);
	assert_non_null(strstr(buf_str(&msg), "AZURE_TENANT_ID"));
	auth_config_release(&cfg);
	buf_release(&msg);
}

static void test_kind_names(void **state)
{
	enum auth_kind k;

	(void)state;
	assert_int_equal(auth_kind_parse("Workload", &k), 0);
	assert_int_equal(k, AUTH_WORKLOAD);
	assert_int_equal(auth_kind_parse("imds", &k), -EINVAL);
	assert_string_equal(auth_kind_name(AUTH_CERTIFICATE), "certificate");
}

/* ---- the cache, with a fake source ------------------------------------------
 */

struct fake {
	struct credential base;
	atomic_int calls;
	long long lifetime; /* expires_in handed out */
	int fail_with;	    /* 0, -EAGAIN or -EACCES */
	unsigned delay_ms;  /* time a fetch takes */
	long long age;	    /* seconds the grant is already old */
	atomic_int serial;
	atomic_bool input_changed; /* what changed() answers */
};

static bool fake_changed(struct credential *c)
{
	return atomic_load(&((struct fake *)c)->input_changed);
}

static int fake_fetch(struct credential *c, struct token_grant *g,
		      struct buf *msg)
{
	struct fake *f = (struct fake *)c;
	struct timespec ts = {0, (long)f->delay_ms * 1000000L};

	atomic_fetch_add(&f->calls, 1);
	nanosleep(&ts, NULL);
	if (f->fail_with) {
		buf_append_str(msg, "fake failure");
		return f->fail_with;
	}
	g->obtained = (long long)time(NULL) - f->age;
	g->expires_in = f->lifetime;
	g->refresh_in = 0;
	return buf_appendf(&g->token, "token-%d",
			   atomic_fetch_add(&f->serial, 1));
}

static void fake_free(struct credential *c)
{
	(void)c;
}

static struct auth *make_auth(struct fake *f)
{
	struct auth_config cfg;
	int err;

	auth_config_init(&cfg);
	cfg.kind = AUTH_WORKLOAD;
	f->base.name = "fake";
	f->base.fetch = fake_fetch;
	f->base.free = fake_free;
	f->base.changed = fake_changed;
	struct auth *a = auth_new_with_credential(&cfg, &f->base, &err);
	assert_non_null(a);
	auth_config_release(&cfg);
	return a;
}

static void test_cached_until_refresh(void **state)
{
	struct fake f = {.lifetime = 3600};
	struct auth *a;
	struct buf t;

	(void)state;
	a = make_auth(&f);
	buf_init_secret(&t, 1024);
	for (int i = 0; i < 100; i++) {
		buf_reset(&t);
		assert_int_equal(auth_token(a, &t), 0);
		assert_string_equal(buf_str(&t), "token-0");
	}
	assert_int_equal(atomic_load(&f.calls), 1);

	/* Invalidation of a stale copy does nothing; of the current one,
	 * forces exactly one new fetch. */
	auth_invalidate(a, "token-old");
	buf_reset(&t);
	assert_int_equal(auth_token(a, &t), 0);
	assert_int_equal(atomic_load(&f.calls), 1);
	auth_invalidate(a, "token-0");
	buf_reset(&t);
	assert_int_equal(auth_token(a, &t), 0);
	assert_string_equal(buf_str(&t), "token-1");
	assert_int_equal(atomic_load(&f.calls), 2);

	struct auth_stats st;
	auth_get_stats(a, &st);
	assert_int_equal(st.token_requests, 2);
	assert_int_equal(st.invalidations, 1);
	assert_true(st.expires_at > (long long)time(NULL));
	buf_release(&t);
	auth_free(a);
}

struct caller {
	struct auth *a;
	int err;
	char got[64];
};

static void *call_token(void *p)
{
	struct caller *c = p;
	struct buf t;

	buf_init_secret(&t, 1024);
	c->err = auth_token(c->a, &t);
	snprintf(c->got, sizeof(c->got), "%s", buf_str(&t));
	buf_release(&t);
	return NULL;
}

static void test_single_flight_cold(void **state)
{
	struct fake f = {.lifetime = 3600, .delay_ms = 200};
	struct caller callers[8];
	pthread_t th[8];

	(void)state;
	struct auth *a = make_auth(&f);
	for (int i = 0; i < 8; i++) {
		callers[i].a = a;
		pthread_create(&th[i], NULL, call_token, &callers[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(callers[i].err, 0);
		assert_string_equal(callers[i].got, "token-0");
	}
	assert_int_equal(atomic_load(&f.calls), 1);
	auth_free(a);
}

static void test_refresh_keeps_serving_old_token(void **state)
{
	/* 4 s lifetime: refresh at 2 s. */
	struct fake f = {.lifetime = 4};
	struct caller callers[8];
	pthread_t th[8];
	struct buf t;

	(void)state;
	struct auth *a = make_auth(&f);
	buf_init_secret(&t, 1024);
	assert_int_equal(auth_token(a, &t), 0);
	sleep(3);
	/* In the refresh window with a slow endpoint: one caller refreshes,
	 * the others get the old, still valid token without waiting. */
	f.delay_ms = 300;
	for (int i = 0; i < 8; i++) {
		callers[i].a = a;
		pthread_create(&th[i], NULL, call_token, &callers[i]);
	}
	int old = 0, fresh = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(callers[i].err, 0);
		old += strcmp(callers[i].got, "token-0") == 0;
		fresh += strcmp(callers[i].got, "token-1") == 0;
	}
	assert_int_equal(old + fresh, 8);
	assert_true(fresh >= 1);
	assert_int_equal(atomic_load(&f.calls), 2);
	buf_release(&t);
	auth_free(a);
}

static void test_failures_back_off(void **state)
{
	struct fake f = {.lifetime = 3600, .fail_with = -EACCES};
	struct buf t;

	(void)state;
	struct auth *a = make_auth(&f);
	buf_init_secret(&t, 1024);
	assert_int_equal(auth_token(a, &t), -EACCES);
	assert_string_equal(auth_last_error(a), "fake failure");
	/* During the backoff no new request reaches the endpoint. */
	for (int i = 0; i < 50; i++)
		assert_int_equal(auth_token(a, &t), -EACCES);
	assert_int_equal(atomic_load(&f.calls), 1);

	/* The input was fixed (a new token file): tried at once, backoff or
	 * not, and the new token is served. */
	f.fail_with = 0;
	atomic_store(&f.input_changed, true);
	assert_int_equal(auth_token(a, &t), 0);
	assert_int_equal(atomic_load(&f.calls), 2);
	assert_string_equal(t.data, "token-0");

	/* Transient failures are retried a few times when cold. */
	struct fake g = {.lifetime = 3600, .fail_with = -EAGAIN};
	struct auth *b = make_auth(&g);
	assert_int_equal(auth_token(b, &t), -EAGAIN);
	assert_int_equal(atomic_load(&g.calls), 3);
	buf_release(&t);
	auth_free(a);
	auth_free(b);
}

/* A token already expired when it arrives (a hostile or broken endpoint,
 * or a lifetime that overflowed): a failure with its backoff, not a loop
 * fetching again at once for every caller. */
static void test_token_dead_on_arrival_backs_off(void **state)
{
	struct fake f = {.lifetime = 10, .age = 100};
	struct buf t;

	(void)state;
	struct auth *a = make_auth(&f);
	buf_init_secret(&t, 1024);
	assert_int_equal(auth_token(a, &t), -EAGAIN);
	assert_int_equal(t.len, 0);
	assert_non_null(strstr(auth_last_error(a), "expires at once"));
	int calls = atomic_load(&f.calls);
	assert_true(calls >= 1 && calls <= 3);
	for (int i = 0; i < 50; i++)
		assert_int_equal(auth_token(a, &t), -EAGAIN);
	assert_int_equal(atomic_load(&f.calls), calls);
	buf_release(&t);
	auth_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refresh_at),
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_auto_picks_workload_on_aks),
	    cmocka_unit_test(test_auto_order),
	    cmocka_unit_test(test_explicit_kind_and_overrides),
	    cmocka_unit_test(test_scope),
	    cmocka_unit_test(test_missing_variables_are_named),
	    cmocka_unit_test(test_http_refused_unless_allowed),
	    cmocka_unit_test(test_tenant_validated),
	    cmocka_unit_test(test_kind_names),
	    cmocka_unit_test(test_cached_until_refresh),
	    cmocka_unit_test(test_single_flight_cold),
	    cmocka_unit_test(test_refresh_keeps_serving_old_token),
	    cmocka_unit_test(test_failures_back_off),
	    cmocka_unit_test(test_token_dead_on_arrival_backs_off),
	};
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
