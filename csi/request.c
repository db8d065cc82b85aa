/* SPDX-License-Identifier: MIT */
/*
 * The CSI rules for NodePublishVolume and NodeUnpublishVolume, and spfs's
 * own: which attributes a volume has, where its token comes from, which
 * capabilities a read-only library can honour. Every refusal is
 * INVALID_ARGUMENT (the CO must fix the request) with one line saying what
 * to change; messages end up in `kubectl describe pod`.
 */
#include "config.h"

#include "csi/request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool empty(const char *s)
{
	return !s || !*s;
}

static const char *lookup(const struct csi_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (kv[i].key && strcmp(kv[i].key, key) == 0)
			return kv[i].value;
	return NULL;
}

static int dup_field(char **field, const char *value)
{
	if (empty(value))
		return 0;
	*field = strdup(value);
	return *field ? 0 : -ENOMEM;
}

static enum csi_code check_capability(const struct csi_publish_request *r,
				      struct buf *msg)
{
	if (!r->has_capability) {
		buf_appendf(msg, "volume_capability is required");
		return CSI_INVALID_ARGUMENT;
	}
	if (r->access_type == CSI_ACCESS_BLOCK) {
		buf_appendf(msg, "a SharePoint library is a filesystem: "
				 "volume_capability must be a mount, not a "
				 "block device (volumeMode: Filesystem)");
		return CSI_INVALID_ARGUMENT;
	}
	if (r->access_type != CSI_ACCESS_MOUNT) {
		buf_appendf(msg, "volume_capability has no access_type "
				 "(mount is required)");
		return CSI_INVALID_ARGUMENT;
	}
	if (!empty(r->fs_type) && strcmp(r->fs_type, "fuse.spfs") != 0 &&
	    strcmp(r->fs_type, "spfs") != 0) {
		buf_appendf(msg,
			    "fs_type '%.64s' is not spfs's: leave fsType "
			    "empty (or fuse.spfs)",
			    r->fs_type);
		return CSI_INVALID_ARGUMENT;
	}
	if (!r->has_access_mode || r->access_mode == CSI_MODE_UNKNOWN) {
		buf_appendf(msg, "volume_capability.access_mode is required");
		return CSI_INVALID_ARGUMENT;
	}
	if (r->access_mode < CSI_MODE_SINGLE_NODE_WRITER ||
	    r->access_mode > CSI_MODE_SINGLE_NODE_MULTI_WRITER) {
		buf_appendf(msg, "volume_capability.access_mode %d is unknown",
			    r->access_mode);
		return CSI_INVALID_ARGUMENT;
	}
	/* The kubelet sends SINGLE_NODE_WRITER for every inline volume;
	 * with readonly set that is a read-only publish, which we honour. */
	if (r->access_mode != CSI_MODE_SINGLE_NODE_READER_ONLY &&
	    r->access_mode != CSI_MODE_MULTI_NODE_READER_ONLY && !r->readonly) {
		buf_appendf(msg,
			    "spfs volumes are read-only: set readOnly: true "
			    "on the csi volume (inline) or use accessModes "
			    "[ReadOnlyMany] (PersistentVolume)");
		return CSI_INVALID_ARGUMENT;
	}
	return CSI_OK;
}

static bool known_context_key(const char *key)
{
	static const char *const ours[] = {CSI_CTX_SOURCE, CSI_CTX_CLIENT_ID,
					   CSI_CTX_TENANT_ID, CSI_CTX_OPTIONS};

	if (strncmp(key, "csi.storage.k8s.io/", 19) == 0)
		return true; /* the kubelet's: pod info, tokens, ephemeral */
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		if (strcmp(key, ours[i]) == 0)
			return true;
	return false;
}

/* The pod's token: from secrets first (serviceAccountTokenInSecrets, which
 * keeps it out of logged fields), else from volume_context. */
static enum csi_code find_token(const struct csi_publish_request *r,
				struct sa_token *out, struct buf *msg)
{
	const char *json = lookup(r->secrets, r->n_secrets, SA_TOKENS_KEY);
	int err;

	if (!json)
		json = lookup(r->volume_context, r->n_volume_context,
			      SA_TOKENS_KEY);
	if (!json) {
		buf_appendf(msg,
			    "no %s: the CSIDriver must request the pod's "
			    "token (tokenRequests: [{audience: %s}])",
			    SA_TOKENS_KEY, SA_TOKENS_AUDIENCE);
		return CSI_INVALID_ARGUMENT;
	}
	err = sa_tokens_parse(json, strlen(json), SA_TOKENS_AUDIENCE, out, msg);
	if (err == -ENOENT)
		buf_appendf(msg,
			    "%s has no token for audience %s: add it to the "
			    "CSIDriver's tokenRequests",
			    SA_TOKENS_KEY, SA_TOKENS_AUDIENCE);
	if (err == -ENOMEM)
		return CSI_INTERNAL;
	return err ? CSI_INVALID_ARGUMENT : CSI_OK;
}

enum csi_code csi_publish_check(const struct csi_publish_request *r,
				const struct csi_policy *policy,
				struct csi_volume *v, struct buf *msg)
{
	const struct csi_kv *ctx = r->volume_context;
	size_t nctx = r->n_volume_context;
	enum csi_code code;
	const char *s;
	int err = 0;

	csi_volume_init(v);
	if (empty(r->volume_id)) {
		buf_appendf(msg, "volume_id is required");
		return CSI_INVALID_ARGUMENT;
	}
	if (empty(r->target_path)) {
		buf_appendf(msg, "target_path is required");
		return CSI_INVALID_ARGUMENT;
	}
	code = check_capability(r, msg);
	if (code != CSI_OK)
		return code;
	for (size_t i = 0; i < nctx; i++) {
		if (!ctx[i].key || !known_context_key(ctx[i].key)) {
			buf_appendf(msg,
				    "unknown volume attribute '%.64s' (spfs "
				    "knows source, clientID, tenantID, "
				    "options)",
				    ctx[i].key ? ctx[i].key : "");
			return CSI_INVALID_ARGUMENT;
		}
	}
	if (empty(lookup(ctx, nctx, CSI_CTX_SOURCE))) {
		buf_appendf(msg, "volume attribute source is required: the "
				 "library's URL as the browser shows it");
		return CSI_INVALID_ARGUMENT;
	}
	if (empty(lookup(ctx, nctx, CSI_CTX_CLIENT_ID))) {
		buf_appendf(msg, "volume attribute clientID is required: the "
				 "client id of the identity federated with "
				 "the pod's service account");
		return CSI_INVALID_ARGUMENT;
	}
	s = lookup(ctx, nctx, CSI_CTX_TENANT_ID);
	if (empty(s))
		s = policy->default_tenant_id;
	if (empty(s)) {
		buf_appendf(msg, "volume attribute tenantID is required (or "
				 "spfs-csi --tenant-id)");
		return CSI_INVALID_ARGUMENT;
	}
	err = err ? err : dup_field(&v->tenant_id, s);
	err = err ? err : dup_field(&v->volume_id, r->volume_id);
	err = err ? err : dup_field(&v->target, r->target_path);
	err = err ? err
		  : dup_field(&v->source, lookup(ctx, nctx, CSI_CTX_SOURCE));
	err = err ? err
		  : dup_field(&v->client_id,
			      lookup(ctx, nctx, CSI_CTX_CLIENT_ID));
	err = err ? err
		  : dup_field(&v->namespace_,
			      lookup(ctx, nctx, CSI_CTX_POD_NAMESPACE));
	err = err ? err
		  : dup_field(&v->service_account,
			      lookup(ctx, nctx, CSI_CTX_SA_NAME));
	err =
	    err ? err
		: dup_field(&v->pod_name, lookup(ctx, nctx, CSI_CTX_POD_NAME));
	if (err)
		goto fail;
	s = lookup(ctx, nctx, CSI_CTX_EPHEMERAL);
	v->ephemeral = s && strcmp(s, "true") == 0;
	v->readonly = r->readonly;

	/* Options: the volume attribute, then a PV's mountOptions. */
	v->options = strdup("");
	if (!v->options) {
		err = -ENOMEM;
		goto fail;
	}
	err = csi_options_add(&v->options, lookup(ctx, nctx, CSI_CTX_OPTIONS),
			      msg);
	for (size_t i = 0; !err && i < r->n_mount_flags; i++)
		err = csi_options_add(&v->options, r->mount_flags[i], msg);
	if (err)
		goto fail;
	code = find_token(r, &v->token, msg);
	if (code != CSI_OK) {
		csi_volume_release(v);
		return code;
	}
	code = csi_volume_check(v, policy->kubelet_dir, msg);
	if (code != CSI_OK)
		csi_volume_release(v);
	return code;
fail:
	csi_volume_release(v);
	return err == -ENOMEM ? CSI_INTERNAL : CSI_INVALID_ARGUMENT;
}

enum csi_code csi_unpublish_check(const char *volume_id,
				  const char *target_path,
				  const struct csi_policy *policy,
				  struct buf *msg)
{
	if (empty(volume_id)) {
		buf_appendf(msg, "volume_id is required");
		return CSI_INVALID_ARGUMENT;
	}
	if (empty(target_path)) {
		buf_appendf(msg, "target_path is required");
		return CSI_INVALID_ARGUMENT;
	}
	if (csi_target_check(target_path, policy->kubelet_dir, msg) != 0)
		return CSI_INVALID_ARGUMENT;
	return CSI_OK;
}
