/* SPDX-License-Identifier: MIT */
/*
 * --check: report which credential was chosen and why, the non-secret claims
 * of the service-account token and of the access token, and the outcome.
 * Every failure ends in one actionable line; exit status 0 only on success.
 */
#include "config.h"

#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/jwt.h"
#include "graph/graph.h"
#include "graph/item.h"
#include "graph/source.h"
#include "base/log.h"
#include "http/http.h"

static void print_time(FILE *out, const char *label, long long t, long long now)
{
	char when[32];
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm);
	long long d = t - now;
	fprintf(out, "  %-9s %s (%s %lldm%02llds)\n", label, when,
		d >= 0 ? "in" : "expired", (d >= 0 ? d : -d) / 60,
		(d >= 0 ? d : -d) % 60);
}

static void print_list(FILE *out, const char *label, char **items, size_t n)
{
	fprintf(out, "  %-9s ", label);
	if (n == 0)
		fprintf(out, "(none)");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? ", " : "", items[i]);
	fprintf(out, "\n");
}

/* The service-account token's claims: what Entra will match against the
 * federated credential. Reads the file like the exchange does. */
static void report_sa_token(const struct auth_config *cfg, FILE *out)
{
	FILE *f = fopen(cfg->token_file, "re");
	char *data = NULL;
	size_t cap = 0;
	struct jwt_claims c;
	long long now = (long long)time(NULL);

	fprintf(out, "service-account token: %s\n", cfg->token_file);
	if (!f) {
		fprintf(out, "  cannot read it: %s\n", strerror(errno));
		return;
	}
	ssize_t n = getdelim(&data, &cap, '\0', f);
	fclose(f);
	if (n <= 0 || jwt_decode(data, strcspn(data, " \t\r\n"), &c) != 0) {
		fprintf(out, "  not a JWT: the file does not hold a projected "
			     "service-account token\n");
		goto out;
	}
	fprintf(out, "  %-9s %s\n", "iss", c.iss ? c.iss : "(missing)");
	fprintf(out, "  %-9s %s\n", "sub", c.sub ? c.sub : "(missing)");
	print_list(out, "aud", c.aud, c.naud);
	if (c.has_exp)
		print_time(out, "exp", c.exp, now);
	jwt_claims_release(&c);
out:
	if (data) {
		explicit_bzero(data, cap);
		free(data);
	}
}

static void report_access_token(const char *token, size_t len, FILE *out)
{
	struct jwt_claims c;

	if (jwt_decode(token, len, &c) != 0) {
		fprintf(out, "  (opaque token: no claims to show)\n");
		return;
	}
	if (c.appid)
		fprintf(out, "  %-9s %s\n", "appid", c.appid);
	if (c.oid)
		fprintf(out, "  %-9s %s\n", "oid", c.oid);
	if (c.tid)
		fprintf(out, "  %-9s %s\n", "tid", c.tid);
	print_list(out, "aud", c.aud, c.naud);
	print_list(out, "roles", c.roles, c.nroles);
	if (c.has_exp)
		print_time(out, "exp", c.exp, (long long)time(NULL));
	if (c.nroles == 0)
		fprintf(out, "  note: the token carries no application roles: "
			     "grant the identity "
			     "Sites.Selected (and a site permission) or "
			     "Sites.Read.All\n");
	jwt_claims_release(&c);
}

static double elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

struct root_listing {
	FILE *out;
	size_t count;
};

static int show_entry(void *ctx, const struct graph_item *it)
{
	struct root_listing *r = ctx;

	if (r->count++ < 10)
		fprintf(r->out, "  %-9s %s%s\n",
			it->is_folder ? "folder" : "file", it->name,
			it->is_folder ? "/" : "");
	return 0;
}

/* The Graph steps: site, library, root listing, each with its timing. */
static int check_source(struct options *o, struct http *http, struct auth *auth,
			FILE *out)
{
	struct graph_config gc = {.base_url = o->auth.graph_url,
				  .max_attempts = 3};
	struct source src;
	struct source_resolved res;
	struct buf msg;
	struct timespec t0;
	int err;

	buf_init(&msg, 8192);
	err = source_parse(o->source, &src, &msg);
	if (err) {
		fprintf(out, "source: %s\n  %s\n", o->source, buf_str(&msg));
		buf_release(&msg);
		return err;
	}
	struct graph *g = graph_new(http, auth, &gc, &err);
	if (!g)
		goto out_src;
	fprintf(out, "source: %s\n", o->source);
	err = source_resolve(g, &src, &res, &msg, out);
	if (err) {
		fprintf(out, "  FAILED: %s\n", buf_str(&msg));
		goto out_graph;
	}
	if (res.root_path[0])
		fprintf(out, "folder: %s\n", res.root_path);
	struct root_listing r = {.out = out};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fprintf(out, "root listing:\n");
	err = graph_children(g, res.drive_id, res.root_id, show_entry, &r);
	if (err)
		fprintf(out, "  FAILED: %s\n", strerror(-err));
	else
		fprintf(out, "  %zu entries%s in %.0f ms\n", r.count,
			r.count > 10 ? " (first 10 shown)" : "",
			elapsed_ms(&t0));
	source_resolved_release(&res);
out_graph:
	graph_free(g);
out_src:
	source_release(&src);
	buf_release(&msg);
	return err;
}

int check_run(struct options *o, FILE *out)
{
	struct http_config hc = {.cafile = o->cafile,
				 .allow_http = o->auth.allow_http};
	struct http *http = NULL;
	struct auth *auth = NULL;
	struct buf token;
	struct timespec t0;
	int status = 1;
	int err;

	buf_init_secret(&token, 64 * 1024);
	fprintf(out, "spfs %s --check\n", PACKAGE_VERSION);
	fprintf(out, "credential: %s\n  %-9s %s\n",
		auth_kind_description(o->auth.kind), "why",
		o->auth.why ? o->auth.why : "");
	if (o->auth.client_id)
		fprintf(out, "  %-9s %s\n", "client", o->auth.client_id);
	if (o->auth.kind != AUTH_MANAGED) {
		fprintf(out, "  %-9s %s\n", "tenant", o->auth.tenant_id);
		fprintf(out, "  %-9s %s\n", "authority",
			o->auth.authority_host);
	} else {
		fprintf(out, "  %-9s %s\n", "imds", o->auth.imds_url);
	}
	fprintf(out, "  %-9s %s\n", "graph", o->auth.graph_url);
	fprintf(out, "  %-9s %s (%s)\n", "scope", o->auth.scope,
		o->auth.scope_from ? o->auth.scope_from : "?");
	if (o->auth.kind == AUTH_WORKLOAD)
		report_sa_token(&o->auth, out);

	http = http_new(&hc, &err);
	if (!http) {
		fprintf(out, "result: FAILED: cannot set up HTTP (%s)\n",
			strerror(-err));
		goto out;
	}
	auth = auth_new(&o->auth, http, &err);
	if (!auth) {
		fprintf(out,
			"result: FAILED: the %s credential cannot be used (see "
			"the log above)\n",
			auth_kind_description(o->auth.kind));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = auth_token(auth, &token);
	if (err) {
		fprintf(out, "access token: FAILED after %.0f ms\n  %s\n",
			elapsed_ms(&t0), auth_last_error(auth));
		fprintf(out, "result: FAILED\n");
		goto out;
	}
	fprintf(out, "access token: obtained in %.0f ms\n", elapsed_ms(&t0));
	report_access_token(token.data, token.len, out);
	if (o->source && check_source(o, http, auth, out) != 0) {
		fprintf(out, "result: FAILED\n");
		goto out;
	}
	fprintf(out, "result: ok\n");
	status = 0;
out:
	buf_release(&token);
	auth_free(auth);
	http_free(http);
	return status;
}
