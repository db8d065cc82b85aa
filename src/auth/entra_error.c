/* SPDX-License-Identifier: MIT */
/*
 * Entra (and IMDS) error bodies -> actionable messages.
 *
 * Design: the table of advice is keyed by AADSTS code (PROTOCOL.md §1.5),
 * never by the description's wording, which Microsoft changes; anything
 * unknown falls back to the error and the first line of the description.
 * Every line ends with the code and the trace id, which is what Microsoft
 * support asks for. Everything quoted from the body is bounded and stripped
 * of control bytes, so a hostile or broken endpoint cannot split a log line
 * or write terminal escapes; the message promises one line and keeps it.
 * json-c stays inside this file.
 */
#include "config.h"

#include "auth/entra_error.h"
#include "auth/credential.h"
#include "base/json_cost.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DESCRIPTION_MAX 512
#define FIELD_MAX	128 /* error, trace_id, correlation_id */

void entra_error_release(struct entra_error *e)
{
	free(e->error);
	free(e->description);
	free(e->trace_id);
	free(e->correlation_id);
	memset(e, 0, sizeof(*e));
}

/* Length of s[0..n) cut back so it does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t full)
{
	if (n >= full)
		return full;
	/* s[n] is the first byte dropped: back up over continuation bytes. */
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* Copies at most max bytes of s[0..n), control bytes (incl. DEL) turned into
 * spaces, trailing spaces trimmed. */
static char *clean_dup(const char *s, size_t n, size_t max)
{
	char *d;
	size_t len = utf8_cut(s, max, n);

	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	d = malloc(len + 1);
	if (!d)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		d[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	d[len] = '\0';
	return d;
}

/* An optional string member, cleaned. 0 (absent or not a string: *out stays
 * NULL) or -ENOMEM. */
static int dup_member(struct json_object *o, const char *key, size_t max,
		      char **out)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return 0;
	*out = clean_dup(json_object_get_string(v),
			 (size_t)json_object_get_string_len(v), max);
	return *out ? 0 : -ENOMEM;
}

/* "AADSTSnnnn:" at the start of s -> nnnn, else 0. */
static long code_from_description(const char *s)
{
	long code = 0;
	size_t i = 6;

	if (strncmp(s, "AADSTS", 6) != 0)
		return 0;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (i - 6 >= 9)
			return 0; /* no real code has 10 digits */
		code = code * 10 + (s[i] - '0');
	}
	return i > 6 && s[i] == ':' ? code : 0;
}

/* The first error_codes[] entry, as a number or a numeric string, else 0. */
static long code_from_array(struct json_object *obj)
{
	struct json_object *v, *c;

	if (!json_object_object_get_ex(obj, "error_codes", &v) ||
	    !json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) == 0)
		return 0;
	c = json_object_array_get_idx(v, 0);
	if (json_object_is_type(c, json_type_int)) {
		int64_t n = json_object_get_int64(c);
		return n > 0 && n < 1000000000 ? (long)n : 0;
	}
	if (json_object_is_type(c, json_type_string)) {
		const char *s = json_object_get_string(c);
		char *end;
		long n = strtol(s, &end, 10);
		return *s && !*end && n > 0 && n < 1000000000 ? n : 0;
	}
	return 0;
}

/* The description's first line: up to CR/LF, or up to an inline "Trace ID:"
 * (some proxies flatten the CRLFs), bounded. */
static char *first_line(const char *desc)
{
	size_t n = strcspn(desc, "\r\n");
	const char *trace = strstr(desc, "Trace ID:");

	if (trace && (size_t)(trace - desc) < n)
		n = (size_t)(trace - desc);
	return clean_dup(desc, n, DESCRIPTION_MAX);
}

int entra_error_parse(const char *body, size_t len, struct entra_error *out)
{
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL, *v;
	int err = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!body || len == 0 || len > INT_MAX ||
	    json_cost(body, len) > AUTH_JSON_COST_MAX)
		return -EINVAL;
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	/* Strict, as json_cost() reads it (no comments or single quotes). */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	if (!obj || !json_object_is_type(obj, json_type_object))
		goto out;
	if (!json_object_object_get_ex(obj, "error", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		goto out;

	const char *desc = "";
	if (json_object_object_get_ex(obj, "error_description", &v) &&
	    json_object_is_type(v, json_type_string))
		desc = json_object_get_string(v);

	err = dup_member(obj, "error", FIELD_MAX, &out->error);
	err =
	    err ? err : dup_member(obj, "trace_id", FIELD_MAX, &out->trace_id);
	err = err ? err
		  : dup_member(obj, "correlation_id", FIELD_MAX,
			       &out->correlation_id);
	if (!err) {
		out->description = first_line(desc);
		err = out->description ? 0 : -ENOMEM;
	}
	out->aadsts = code_from_array(obj);
	if (!out->aadsts)
		out->aadsts = code_from_description(desc);
out:
	if (err)
		entra_error_release(out);
	json_object_put(obj);
	json_tokener_free(tok);
	return err;
}

static void utc(long long t, char *out, size_t n)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm) ||
	    strftime(out, n, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "@%lld", t);
}

static const char *or_unknown(const char *s)
{
	return s && *s ? s : "(unknown)";
}

static int is_credential(const struct entra_error_context *ctx,
			 const char *name)
{
	return ctx->credential && strcmp(ctx->credential, name) == 0;
}

/* "<issuer>/.well-known/openid-configuration" with exactly one slash. */
static int append_discovery_url(struct buf *out, const char *iss)
{
	size_t n = strlen(iss);

	while (n > 0 && iss[n - 1] == '/')
		n--;
	return buf_appendf(out, "%.*s/.well-known/openid-configuration", (int)n,
			   iss);
}

static int advice(const struct entra_error *e,
		  const struct entra_error_context *ctx, struct buf *out)
{
	char t1[40], t2[40];
	int err;

	switch (e->aadsts) {
	case 70021:
		return buf_appendf(out,
				   "no federated credential on client %s "
				   "matches issuer '%s' and subject '%s': "
				   "create one with exactly that issuer "
				   "(trailing slash included) and subject, "
				   "audience api://AzureADTokenExchange (a new "
				   "credential takes a few minutes to apply)",
				   or_unknown(ctx->client_id),
				   or_unknown(ctx->sa_issuer),
				   or_unknown(ctx->sa_subject));
	case 700211:
		return buf_appendf(out,
				   "no federated credential on client %s has "
				   "the token's issuer '%s': "
				   "the credential's issuer must equal it byte "
				   "for byte (trailing slash included)",
				   or_unknown(ctx->client_id),
				   or_unknown(ctx->sa_issuer));
	case 700213:
		return buf_appendf(out,
				   "no federated credential on client %s has "
				   "the token's subject '%s': "
				   "the credential's subject must equal it "
				   "exactly (compared case-sensitively)",
				   or_unknown(ctx->client_id),
				   or_unknown(ctx->sa_subject));
	case 700016:
		return buf_appendf(
		    out,
		    "client id %s was not found in tenant %s: check "
		    "AZURE_CLIENT_ID (the service account's "
		    "azure.workload.identity/client-id annotation) and "
		    "AZURE_TENANT_ID",
		    or_unknown(ctx->client_id), or_unknown(ctx->tenant_id));
	case 700024:
		utc(ctx->now ? ctx->now : (long long)time(NULL), t2,
		    sizeof(t2));
		if (ctx->sa_exp) {
			utc(ctx->sa_exp, t1, sizeof(t1));
			return buf_appendf(
			    out,
			    "the client assertion is expired or not yet valid: "
			    "the token expires %s (exp), local time is %s; "
			    "check clock skew and that kubelet rotates the "
			    "projected token",
			    t1, t2);
		}
		return buf_appendf(
		    out,
		    "the client assertion is expired or not yet valid (local "
		    "time %s): check clock skew%s",
		    t2,
		    is_credential(ctx, "workload identity")
			? " and that kubelet rotates the projected token"
			: "");
	case 90061:
		err = buf_appendf(out, "Entra ID could not fetch the issuer's "
				       "OpenID discovery document (");
		if (!err && ctx->sa_issuer && *ctx->sa_issuer)
			err = append_discovery_url(out, ctx->sa_issuer);
		else if (!err)
			err = buf_appendf(
			    out, "<issuer>/.well-known/openid-configuration");
		return err ? err
			   : buf_appendf(
				 out,
				 "): it must be publicly reachable over HTTPS, "
				 "and so must the jwks_uri it names "
				 "(is the cluster's OIDC issuer enabled?)");
	case 700027:
		if (is_credential(ctx, "client certificate"))
			return buf_appendf(
			    out,
			    "the client assertion's signature validation "
			    "failed: the certificate is not "
			    "registered on app %s (upload its public part "
			    "under Certificates & secrets)",
			    or_unknown(ctx->client_id));
		if (is_credential(ctx, "workload identity"))
			return buf_appendf(
			    out, "the service-account token's signature "
				 "validation failed: the issuer's JWKS "
				 "does not hold the key that signed it (were "
				 "the cluster's signing keys rotated?)");
		return buf_appendf(
		    out, "the client assertion's signature validation failed");
	case 7000215:
		return buf_appendf(
		    out,
		    "invalid client secret for client %s: use the secret's "
		    "value (not its id) and check that it has not expired",
		    or_unknown(ctx->client_id));
	case 70011:
		/* Entra's description names the scope it saw: keep it. */
		return buf_appendf(
		    out,
		    "invalid scope: spfs asks for <graph_url origin>/.default, "
		    "so check -o graph_url (%s)",
		    e->description && *e->description ? e->description
						      : "no description");
	case 500011:
		return buf_appendf(
		    out,
		    "Entra knows no resource for the scope %s in tenant %s: "
		    "spfs derives the scope from -o graph_url's host, which "
		    "for a gateway or any host other than Microsoft Graph is "
		    "no resource; set -o scope=https://graph.microsoft.com/"
		    ".default (the resource the gateway forwards to)",
		    or_unknown(ctx->scope), or_unknown(ctx->tenant_id));
	case 90002:
		return buf_appendf(
		    out,
		    "tenant %s was not found: check AZURE_TENANT_ID (a tenant "
		    "id or a verified domain)",
		    or_unknown(ctx->tenant_id));
	default:
		return buf_appendf(out, "%s: %s", or_unknown(e->error),
				   e->description && *e->description
				       ? e->description
				       : "(no description)");
	}
}

int entra_error_message(const struct entra_error *e,
			const struct entra_error_context *ctx, struct buf *out)
{
	static const struct entra_error_context none;
	size_t start = out->len;
	int err;

	if (!ctx)
		ctx = &none;
	err = advice(e, ctx, out);
	if (!err && e->aadsts)
		err = buf_appendf(out, " (AADSTS%ld", e->aadsts);
	if (!err && e->aadsts)
		err = e->trace_id ? buf_appendf(out, ", trace %s)", e->trace_id)
				  : buf_appendf(out, ")");
	else if (!err && e->trace_id)
		err = buf_appendf(out, " (trace %s)", e->trace_id);
	/* The context comes from files and the environment: keep one line. */
	for (size_t i = start; out->data && i < out->len; i++) {
		unsigned char c = (unsigned char)out->data[i];
		if (c < 0x20 || c == 0x7f)
			out->data[i] = ' ';
	}
	return err;
}
