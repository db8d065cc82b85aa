/* SPDX-License-Identifier: MIT */
#ifndef SPFS_AUTH_ENTRA_ERROR_H
#define SPFS_AUTH_ENTRA_ERROR_H

/*
 * Entra ID (and IMDS) error bodies, turned into one line a person can act
 * on. We branch on `error` and the AADSTS code, never on the description's
 * wording, which Microsoft changes.
 */

#include "base/buf.h"

struct entra_error {
	char *error;       /* "invalid_client", ... */
	long aadsts;       /* error_codes[0], else from "AADSTSnnnn:", else 0 */
	char *description; /* first line of error_description, bounded */
	char *trace_id;
	char *correlation_id;
};

/* Parses {"error":..,"error_description":..,"error_codes":[..],...}.
 * Returns 0, -EINVAL (not JSON, or no "error" string), -ENOMEM. */
int entra_error_parse(const char *body, size_t len, struct entra_error *out);
void entra_error_release(struct entra_error *e);

/* What the message may quote; every field is optional. */
struct entra_error_context {
	const char *credential; /* "workload identity", ... */
	const char *client_id;
	const char *tenant_id;
	const char *sa_issuer;  /* from the service-account token */
	const char *sa_subject;
	long long sa_exp;
	long long now;
};

/* Appends one actionable line to out. Returns 0 or -ENOMEM/-EFBIG. */
int entra_error_message(const struct entra_error *e,
			const struct entra_error_context *ctx, struct buf *out);

#endif
