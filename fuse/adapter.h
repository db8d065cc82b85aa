/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FUSE_ADAPTER_H
#define SPFS_FUSE_ADAPTER_H

/*
 * The FUSE adapter: the only code that includes <fuse_lowlevel.h>. It
 * translates kernel requests into fs_* calls and replies; mounting, the
 * multi-threaded loop and clean unmount on SIGTERM/SIGINT live here too.
 */

#include <stdbool.h>

struct fs;

struct fuse_adapter_config {
	const char *mountpoint;
	const char *fsname; /* shown in /proc/mounts: the SOURCE */
	bool foreground;
	bool debug; /* libfuse's -d */
	bool allow_other;
	bool default_permissions;
	double entry_timeout; /* seconds the kernel may cache names */
	double attr_timeout;  /* and attributes */
	/* Called once serving (after daemonizing: threads may start here)
	 * and once before unmounting. Optional. */
	void (*started)(void *ctx);
	void (*stopping)(void *ctx);
	void *hook_ctx;
	/* Called as soon as the mount is going away (SIGTERM/SIGINT/SIGHUP,
	 * or unmounted): it must end every network wait, so that nothing in
	 * flight keeps the process alive. May run in a signal handler: only
	 * async-signal-safe work (http_abort). Optional. */
	void (*abort)(void *ctx);
	void *abort_ctx;
};

/* Mounts, serves until unmounted or signalled, unmounts. Returns 0 or a
 * negative errno (mount failure: message logged). */
int fuse_adapter_run(struct fs *fs, const struct fuse_adapter_config *cfg);

#endif
