/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_VOLUME_H
#define SPFS_CSI_VOLUME_H

/*
 * A volume as spfs-csi publishes it: which library, read as which identity,
 * with which spfs options, at which target. The plugin builds one from a
 * NodePublishVolume request (csi/request.h); the mounter receives it over
 * its socket (csi/wire.h) and checks it again with csi_volume_check().
 *
 * The identity is (tenant, client id, namespace, service account): pods of
 * one service account federated with one client read as the same identity
 * and may share a daemon; anything else gets a daemon, a cache and a token
 * file of its own. csi_volume_key() names that daemon.
 */

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "csi/sa_tokens.h"

/* gRPC status codes, as CSI uses them. */
enum csi_code {
	CSI_OK = 0,
	CSI_UNKNOWN = 2,
	CSI_INVALID_ARGUMENT = 3,
	CSI_DEADLINE_EXCEEDED = 4,
	CSI_NOT_FOUND = 5,
	CSI_ALREADY_EXISTS = 6,
	CSI_PERMISSION_DENIED = 7,
	CSI_FAILED_PRECONDITION = 9,
	CSI_ABORTED = 10,
	CSI_INTERNAL = 13,
	CSI_UNAVAILABLE = 14,
};

const char *csi_code_name(int code);

/* Value type; every string owned (csi_volume_release frees). */
struct csi_volume {
	char *volume_id;
	char *target;	 /* the target path, absolute */
	bool readonly;	 /* what the CO asked; spfs is read-only anyway */
	char *source;	 /* SOURCE for spfs: the library's URL */
	char *client_id; /* the Entra application (client) id */
	char *tenant_id;
	char *namespace_;      /* the pod's namespace */
	char *service_account; /* the pod's service account */
	char *pod_name;	       /* for logs only */
	bool ephemeral;	       /* an inline csi: volume */
	char *options;	       /* canonical "k=v,k=v" (sorted), "" for none */
	struct sa_token token;
};

void csi_volume_init(struct csi_volume *v);
void csi_volume_release(struct csi_volume *v);

/* The daemon's name: 32 hex digits of SHA-256 over the identity, the
 * source and the options. Same inputs, same key. */
#define CSI_KEY_LEN 32
void csi_volume_key(const struct csi_volume *v, char out[CSI_KEY_LEN + 1]);

/*
 * Checks every field of a volume (what the plugin built, or what arrived
 * on the mounter's socket): identifiers in their expected alphabets, the
 * source an https:// URL or drive: id without commas or control characters,
 * options canonical and allowed, the target under kubelet_dir, a token
 * present. CSI_OK, or CSI_INVALID_ARGUMENT with one line in *msg.
 */
enum csi_code csi_volume_check(const struct csi_volume *v,
			       const char *kubelet_dir, struct buf *msg);

/* A target path the plugin may mount on: absolute, below kubelet_dir, no
 * "." or ".." or empty components, at most PATH_MAX. 0 or -EINVAL (*msg). */
int csi_target_check(const char *target, const char *kubelet_dir,
		     struct buf *msg);

/*
 * Adds "k=v,k=v" (or one "k=v" / "k" as a PV's mountOptions entry gives
 * it) to a canonical option list: only the options a pod may choose (cache
 * and timing knobs, ownership, log level; never endpoints, trust stores,
 * credentials or paths), values of [A-Za-z0-9.] only. "ro" and "rw" are
 * accepted and dropped (the volume is read-only whatever they say). A key
 * given twice with different values is refused. *canon is malloc'd and
 * replaced. 0, -EINVAL (*msg says which option and why), -ENOMEM.
 */
int csi_options_add(char **canon, const char *list, struct buf *msg);

/* Client and tenant ids: a GUID (tenant: or a domain name). */
bool csi_guid_valid(const char *s);
bool csi_tenant_valid(const char *s);

#endif
