/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_STATE_H
#define SPFS_CSI_STATE_H

/*
 * The mounter's state on disk, so that a restarted mounter (a crash, a
 * DaemonSet update) brings every volume back:
 *
 *   STATE/                      0700
 *   STATE/daemons/KEY/          0700, one per daemon (csi_volume_key)
 *     volume.json               what it serves: source, identity, options
 *     token                     the pod's service-account token, 0600
 *     pid                       the running spfs, to stop a stale one
 *     cache/                    spfs's cache, 0700
 *     mnt/                      spfs's mountpoint
 *   STATE/targets/HASH.json     one published target: volume_id, target,
 *                               key, readonly (HASH: SHA-256 of the path)
 *
 * Files are replaced atomically (temporary file, fsync, rename), so a
 * crash leaves the old or the new version, never a mix; a token file is
 * never seen half-written by spfs, which re-reads it at every exchange.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "base/buf.h"
#include "csi/volume.h"

struct state_target {
	char *volume_id; /* owned */
	char *target;	 /* owned */
	char key[CSI_KEY_LEN + 1];
	bool readonly;
};

void state_target_release(struct state_target *t);

/* Creates STATE, STATE/daemons and STATE/targets (0700). 0 or -errno. */
int state_init(const char *dir);

/* STATE/daemons/KEY[/leaf] into out. 0 or -ENAMETOOLONG. */
int state_daemon_path(struct buf *out, const char *dir, const char *key,
		      const char *leaf);

/* Writes data to path through a temporary file in the same directory,
 * fsync, rename. mode applies to the new file. 0 or -errno. */
int state_write_atomic(const char *path, const char *data, size_t len,
		       mode_t mode);

/* Creates STATE/daemons/KEY with cache/ and mnt/, and writes volume.json
 * (no token in it). 0 or -errno. */
int state_save_daemon(const char *dir, const char *key,
		      const struct csi_volume *v);
/* Replaces STATE/daemons/KEY/token (0600). 0 or -errno. */
int state_write_token(const char *dir, const char *key,
		      const struct sa_token *t);
int state_write_pid(const char *dir, const char *key, pid_t pid);
/* The pid last written, or 0. */
pid_t state_read_pid(const char *dir, const char *key);
/* Removes STATE/daemons/KEY and everything below it, without crossing
 * into a mounted filesystem. 0 or -errno. */
int state_remove_daemon(const char *dir, const char *key);

int state_save_target(const char *dir, const struct state_target *t);
int state_remove_target(const char *dir, const char *target);

/*
 * Reads every daemon (volume.json into a csi_volume without token, target
 * and volume_id; plus the token file) and then every target, calling back
 * for each. Unreadable entries are logged and skipped. A callback may take
 * fields it keeps (setting them to NULL); the rest is released after it
 * returns. 0 or -errno (the directory).
 */
typedef void (*state_daemon_fn)(void *ctx, const char *key,
				struct csi_volume *v);
typedef void (*state_target_fn)(void *ctx, struct state_target *t);
int state_load(const char *dir, state_daemon_fn on_daemon,
	       state_target_fn on_target, void *ctx);

#endif
