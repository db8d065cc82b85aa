/* SPDX-License-Identifier: MIT */
/*
 * Entra error bodies -> actionable messages. The table of advice is keyed by
 * AADSTS code (PROTOCOL.md §1.5); anything unknown falls back to the error
 * and the first line of the description. Always ends with the code and the
 * trace id, which is what Microsoft support asks for.
 */
#include "config.h"

#include "auth/entra_error.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DESCRIPTION_MAX 512

void entra_error_release(struct entra_error *e)
{
	free(e->error);
	free(e->description);
	free(e->trace_id);
	free(e->correlation_id);
	memset(e, 0, sizeof(*e));
}

static char *dup_member(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return strdup(json_object_get_string(v));
}

int entra_error_parse(const char *body, size_t len, struct entra_error *out)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj = NULL, *v;
	int err = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!tok)
		return -ENOMEM;
	obj = json_tokener_parse_ex(tok, body, (int)len);
	if (!obj || !json_object_is_type(obj, json_type_object))
		goto out;
	out->error = dup_member(obj, "error");
	if (!out->error)
		goto out;
	out->trace_id = dup_member(obj, "trace_id");
	out->correlation_id = dup_member(obj, "correlation_id");

	const char *desc = "";
	if (json_object_object_get_ex(obj, "error_description", &v) &&
	    json_object_is_type(v, json_type_string))
		desc = json_object_get_string(v);
	size_t n = strcspn(desc, "\r\n");
	if (n > DESCRIPTION_MAX)
		n = DESCRIPTION_MAX;
	out->description = strndup(desc, n);

	if (json_object_object_get_ex(obj, "error_codes", &v) &&
	    json_object_is_type(v, json_type_array) &&
	    json_object_array_length(v) > 0) {
		struct json_object *c = json_object_array_get_idx(v, 0);
		if (json_object_is_type(c, json_type_int))
			out->aadsts = (long)json_object_get_int64(c);
	}
	if (!out->aadsts && strncmp(desc, "AADSTS", 6) == 0)
		out->aadsts = strtol(desc + 6, NULL, 10);
	err = out->description ? 0 : -ENOMEM;
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

	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static const char *or(const char *s, const char *dflt) { return s ? s : dflt; }

int entra_error_message(const struct entra_error *e,
			const struct entra_error_context *ctx, struct buf *out)
{
	char t1[32], t2[32];
	int err;

	switch (e->aadsts) {
	case 70021:
		err = buf_appendf(out,
				  "no federated credential on client %s matches issuer '%s' and subject '%s': "
				  "create one with exactly that issuer (trailing slash included) and subject, "
				  "audience api://AzureADTokenExchange (new credentials take a few minutes to apply)",
				  or(ctx->client_id, "?"), or(ctx->sa_issuer, "?"),
				  or(ctx->sa_subject, "?"));
		break;
	case 700211:
		err = buf_appendf(out,
				  "no federated credential matches the token's issuer '%s': the credential's issuer must equal it byte for byte",
				  or(ctx->sa_issuer, "?"));
		break;
	case 700213:
		err = buf_appendf(out,
				  "no federated credential matches the token's subject '%s' (compared case-sensitively)",
				  or(ctx->sa_subject, "?"));
		break;
	case 700016:
		err = buf_appendf(out,
				  "client id %s was not found in tenant %s: check AZURE_CLIENT_ID (the service account's "
				  "azure.workload.identity/client-id annotation) and AZURE_TENANT_ID",
				  or(ctx->client_id, "?"), or(ctx->tenant_id, "?"));
		break;
	case 700024:
		if (ctx->sa_exp) {
			utc(ctx->sa_exp, t1, sizeof(t1));
			utc(ctx->now, t2, sizeof(t2));
			err = buf_appendf(out,
					  "the service-account token is expired or not yet valid: it expires %s, local time is %s; "
					  "check the node clock and that kubelet rotates the projected token",
					  t1, t2);
		} else {
			err = buf_appendf(out,
					  "the client assertion is expired or not yet valid: check the clock");
		}
		break;
	case 90061:
		err = buf_appendf(out,
				  "Entra ID could not fetch the issuer's OpenID discovery document: %s.well-known/openid-configuration "
				  "must be publicly reachable over HTTPS (is the cluster's OIDC issuer enabled?)",
				  or(ctx->sa_issuer, "the issuer "));
		break;
	case 700027:
		err = buf_appendf(out,
				  "the client assertion's signature was not accepted%s",
				  ctx->credential && strcmp(ctx->credential, "client certificate") == 0
					  ? ": the certificate is not registered on the app registration"
					  : "");
		break;
	case 7000215:
		err = buf_appendf(out,
				  "invalid client secret for client %s: use the secret's value, not its id, and check its expiry",
				  or(ctx->client_id, "?"));
		break;
	case 70011:
		err = buf_appendf(out,
				  "the scope spfs asked for was refused: it follows from -o graph_url (resource + /.default)");
		break;
	case 90002:
		err = buf_appendf(out, "tenant %s was not found: check AZURE_TENANT_ID",
				  or(ctx->tenant_id, "?"));
		break;
	default:
		err = buf_appendf(out, "%s: %s", e->error,
				  e->description && *e->description
					  ? e->description
					  : "(no description)");
	}
	if (!err && e->aadsts)
		err = buf_appendf(out, " (AADSTS%ld", e->aadsts);
	if (!err && e->aadsts)
		err = e->trace_id ? buf_appendf(out, ", trace %s)", e->trace_id)
				  : buf_appendf(out, ")");
	else if (!err && e->trace_id)
		err = buf_appendf(out, " (trace %s)", e->trace_id);
	return err;
}
