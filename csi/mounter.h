/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_MOUNTER_H
#define SPFS_CSI_MOUNTER_H

/*
 * The mounter: the long-lived process that owns the spfs daemons, so that
 * restarting or upgrading the gRPC plugin never touches a mount.
 *
 * It answers the plugin on a unix socket (csi/wire.h). A publish starts
 * (or reuses) the daemon for the volume's key, writes the pod's token to
 * the daemon's token file, and bind-mounts the daemon's mount read-only on
 * the target; a republish only replaces the token. An unpublish detaches
 * the target; the last one stops the daemon and deletes its token and cache.
 *
 * A daemon that dies is restarted (at once, then with a doubling delay
 * while it keeps dying) and every target it served is bound again to the
 * new mount. A restarted mounter reads its state directory and brings every
 * daemon and target back the same way. Containers that were running keep
 * the dead mount (ENOTCONN) until they restart: the kubelet binds the
 * target into a container once, at its start.
 */

struct mounter_config {
	const char *socket_path;
	const char *state_dir;
	const char *kubelet_dir;
	const char *spfs_path;	  /* the spfs binary */
	const char *spfs_options; /* -o for every daemon (may be NULL) */
	double restart_delay;	  /* first delay after repeated crashes, s */
	double mount_timeout;	  /* how long spfs may take to mount, s */
};

/* Serves until SIGTERM or SIGINT; then stops the daemons (their state
 * stays, for the next mounter). Returns 0, or 1 after a start-up error. */
int mounter_run(const struct mounter_config *cfg);

#endif
