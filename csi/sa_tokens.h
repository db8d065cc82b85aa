/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_SA_TOKENS_H
#define SPFS_CSI_SA_TOKENS_H

/*
 * The pod's service-account token as the kubelet hands it to a CSI driver
 * whose CSIDriver has tokenRequests: the value of
 * csi.storage.k8s.io/serviceAccount.tokens (in volume_context, or in secrets
 * with serviceAccountTokenInSecrets), a JSON object keyed by audience:
 *
 *   {"api://AzureADTokenExchange":
 *      {"token":"<JWT>","expirationTimestamp":"2026-01-02T03:04:05Z"}}
 *
 * The token is a secret: it is kept in memory wiped on release and never
 * written to a log or an error message.
 */

#include <stddef.h>

#include "base/buf.h"

#define SA_TOKENS_KEY	   "csi.storage.k8s.io/serviceAccount.tokens"
#define SA_TOKENS_AUDIENCE "api://AzureADTokenExchange"
#define SA_TOKEN_MAX	   (64 * 1024)
#define SA_TOKENS_JSON_MAX (256 * 1024)

/* Value type: sa_token_init() before use, sa_token_release() frees. */
struct sa_token {
	char *token;	      /* owned; wiped on release; NULL when none */
	long long expires_at; /* epoch seconds; 0 when the kubelet sent none */
};

void sa_token_init(struct sa_token *t);
void sa_token_release(struct sa_token *t);
/* Copies src into dst (released first). 0 or -ENOMEM. */
int sa_token_copy(struct sa_token *dst, const struct sa_token *src);

/*
 * Finds the token for `audience` in json (len bytes; need not be
 * NUL-terminated). A token must look like a JWT (base64url and dots): it
 * becomes a file that spfs reads. Returns 0 and fills *out; -ENOENT when
 * the object has no entry for that audience; -EINVAL when the value is not
 * what the kubelet sends (one line in *msg, never token bytes); -ENOMEM.
 */
int sa_tokens_parse(const char *json, size_t len, const char *audience,
		    struct sa_token *out, struct buf *msg);

/* "2026-01-02T03:04:05Z", with optional fractions and a +hh:mm offset, as
 * RFC 3339 (and Kubernetes' metav1.Time) writes it. 0 or -EINVAL. */
int rfc3339_parse(const char *s, long long *out);

#endif
