/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_GRPC_SERVER_H
#define SPFS_CSI_GRPC_SERVER_H

/*
 * The CSI node plugin's gRPC server (csi/grpc_server.cc, the only C++ in
 * spfs), callable from C.
 */

#ifdef __cplusplus
extern "C" {
#endif

#include "csi/request.h"

struct csi_plugin_config {
	const char *endpoint;	    /* unix:///path/csi.sock (or a path) */
	const char *driver_name;    /* GetPluginInfo's name */
	const char *version;	    /* GetPluginInfo's vendor_version */
	const char *node_id;	    /* NodeGetInfo */
	const char *mounter_socket; /* where the mounter listens */
	struct csi_policy policy;
};

/* Serves Identity and Node until SIGTERM or SIGINT (which the caller has
 * blocked in every thread). Returns 0, or 1 when it cannot listen. */
int csi_grpc_serve(const struct csi_plugin_config *cfg);

#ifdef __cplusplus
}
#endif

#endif
