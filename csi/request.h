/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_REQUEST_H
#define SPFS_CSI_REQUEST_H

/*
 * NodePublishVolume and NodeUnpublishVolume as the CO sent them, checked
 * against the CSI specification and spfs's rules before anything is
 * mounted. The gRPC layer copies the protobuf fields into these structs
 * (strings borrowed, never copied); everything here is plain C, so the
 * rules are unit tested without gRPC.
 *
 * What a publish must carry:
 *   volume_id, target_path                    (INVALID_ARGUMENT when empty)
 *   volume_capability with access_type mount  (block is INVALID_ARGUMENT)
 *     fs_type "" or "fuse.spfs"; mount_flags: spfs options (PV mountOptions)
 *     access_mode: a reader mode, or any mode with readonly = true
 *   volume_context (the volume's attributes):
 *     source     the library's URL as the browser shows it
 *     clientID   the Entra identity federated with the pod's service account
 *     tenantID   the tenant (or the plugin's --tenant-id)
 *     options    spfs options "k=v,..." (optional; an allow-list)
 *     csi.storage.k8s.io/pod.namespace, serviceAccount.name (podInfoOnMount)
 *   csi.storage.k8s.io/serviceAccount.tokens in secrets (Kubernetes 1.35
 *   serviceAccountTokenInSecrets) or else in volume_context (tokenRequests)
 */

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "csi/volume.h"

#define CSI_CTX_SOURCE	      "source"
#define CSI_CTX_CLIENT_ID     "clientID"
#define CSI_CTX_TENANT_ID     "tenantID"
#define CSI_CTX_OPTIONS	      "options"
#define CSI_CTX_POD_NAME      "csi.storage.k8s.io/pod.name"
#define CSI_CTX_POD_NAMESPACE "csi.storage.k8s.io/pod.namespace"
#define CSI_CTX_POD_UID	      "csi.storage.k8s.io/pod.uid"
#define CSI_CTX_SA_NAME	      "csi.storage.k8s.io/serviceAccount.name"
#define CSI_CTX_EPHEMERAL     "csi.storage.k8s.io/ephemeral"

struct csi_kv {
	const char *key;
	const char *value;
};

enum csi_access_type {
	CSI_ACCESS_UNSET = 0,
	CSI_ACCESS_BLOCK,
	CSI_ACCESS_MOUNT,
};

/* VolumeCapability.AccessMode.Mode values. */
enum csi_access_mode {
	CSI_MODE_UNKNOWN = 0,
	CSI_MODE_SINGLE_NODE_WRITER = 1,
	CSI_MODE_SINGLE_NODE_READER_ONLY = 2,
	CSI_MODE_MULTI_NODE_READER_ONLY = 3,
	CSI_MODE_MULTI_NODE_SINGLE_WRITER = 4,
	CSI_MODE_MULTI_NODE_MULTI_WRITER = 5,
	CSI_MODE_SINGLE_NODE_SINGLE_WRITER = 6,
	CSI_MODE_SINGLE_NODE_MULTI_WRITER = 7,
};

/* Every pointer borrowed; NULL and "" are the same (proto3 defaults). */
struct csi_publish_request {
	const char *volume_id;
	const char *target_path;
	bool has_capability;
	enum csi_access_type access_type;
	const char *fs_type;
	const char *const *mount_flags;
	size_t n_mount_flags;
	bool has_access_mode;
	int access_mode;
	bool readonly;
	const struct csi_kv *secrets;
	size_t n_secrets;
	const struct csi_kv *volume_context;
	size_t n_volume_context;
};

/* What the plugin was started with. */
struct csi_policy {
	const char *kubelet_dir;       /* targets must be below it */
	const char *default_tenant_id; /* when a volume has no tenantID */
};

/*
 * Checks a publish request and builds the volume (*out, initialized here;
 * the caller releases it). Returns CSI_OK, or CSI_INVALID_ARGUMENT with one
 * line in *msg that names the field and how to fix it (never a token).
 */
enum csi_code csi_publish_check(const struct csi_publish_request *req,
				const struct csi_policy *policy,
				struct csi_volume *out, struct buf *msg);

/* NodeUnpublishVolume: both fields required, the target below the kubelet
 * directory. CSI_OK or CSI_INVALID_ARGUMENT (*msg). */
enum csi_code csi_unpublish_check(const char *volume_id,
				  const char *target_path,
				  const struct csi_policy *policy,
				  struct buf *msg);

#endif
