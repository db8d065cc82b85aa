/* SPDX-License-Identifier: MIT */
#ifndef SPFS_AUTH_ENTRA_ERROR_H
#define SPFS_AUTH_ENTRA_ERROR_H

/*
 * Entra ID (and IMDS) error bodies, turned into one line a person can act
 * on. We branch on `error` and the AADSTS code, never on the description's
 * wording, which Microsoft changes.
 */

#include "base/buf.h"

/* Value type: owned by the caller, released with entra_error_release().
 * Every string is malloc'd, bounded and free of control bytes. */
struct entra_error {
	char *error;	   /* "invalid_client", ... (never NULL after parse) */
	long aadsts;	   /* error_codes[0], else from "AADSTSnnnn:", else 0 */
	char *description; /* first line of error_description (before CR/LF
			    * or "Trace ID:"), at most 512 bytes; "" if none */
	char *trace_id;	   /* NULL when absent */
	char *correlation_id; /* NULL when absent */
};

/* Parses body[0..len) as {"error":..,"error_description":..,
 * "error_codes":[..],"trace_id":..,"correlation_id":..} (IMDS sends the same
 * shape without codes). Returns 0, -EINVAL (empty, not a JSON object, or no
 * non-empty "error" string; *out is then zeroed), -ENOMEM. */
int entra_error_parse(const char *body, size_t len, struct entra_error *out);
void entra_error_release(struct entra_error *e);

/* What the message may quote; every field is optional (NULL/0). Borrowed. */
struct entra_error_context {
	const char *credential; /* "workload identity", ... */
	const char *client_id;
	const char *tenant_id;
	const char *sa_issuer; /* from the service-account token */
	const char *sa_subject;
	long long sa_exp;
	long long now;
	const char *scope; /* what was asked for */
};

/* Appends one actionable line (no newline, no JSON) to out: advice for the
 * known AADSTS codes (70021, 700211, 700213, 700016, 700024, 90061, 700027,
 * 7000215, 70011, 500011, 90002), else "<error>: <description>"; then
 * " (AADSTS<n>, trace <id>)" with whichever of the two is known. ctx may be
 * NULL. Quotes only non-secret context (ids, issuer, subject, times).
 * Returns 0 or -ENOMEM/-EFBIG (out may then hold a partial line). */
int entra_error_message(const struct entra_error *e,
			const struct entra_error_context *ctx, struct buf *out);

#endif
