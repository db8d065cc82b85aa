/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_SPFS_CMD_H
#define SPFS_CSI_SPFS_CMD_H

/*
 * spfs's command line as the mounter uses it, and what `spfs --check`
 * reports when it fails. spfs stays the one program that speaks to Entra
 * and Graph; the mounter only starts it and reads its words.
 *
 *   spfs -f SOURCE MNT -o GLOBAL,VOLUME,auth=workload,client_id=..,
 *        tenant_id=..,token_file=..,cache_dir=..,allow_other
 *   spfs --check SOURCE -o (the same)
 *
 * The mounter's own options come last, so neither the administrator's
 * GLOBAL options nor a volume's can change the identity, the token file or
 * the cache directory.
 */

#include <stdbool.h>

#include "base/buf.h"
#include "csi/volume.h"

struct spfs_cmd {
	char *argv[8]; /* NULL-terminated; argv[i] borrowed except opts */
	char *opts;    /* owned: the -o list */
};

struct spfs_cmd_files {
	const char *mnt; /* the daemon's mountpoint */
	const char *token_file;
	const char *cache_dir;
};

/* check: build `--check SOURCE` instead of `-f SOURCE MNT`. 0 or -ENOMEM.
 * The strings in v, files and spfs must outlive the command. */
int spfs_cmd_build(struct spfs_cmd *c, const char *spfs, bool check,
		   const struct csi_volume *v, const struct spfs_cmd_files *f,
		   const char *global_opts);
void spfs_cmd_release(struct spfs_cmd *c);

/*
 * Reads a failed --check: its exit status and report (stdout and stderr).
 * Puts the line that explains the failure into *msg and returns the gRPC
 * code for it: PERMISSION_DENIED when Entra refused the identity (an
 * AADSTS code) or Graph answered 403; NOT_FOUND when the site or library
 * does not exist; INVALID_ARGUMENT for an option spfs rejects (exit 2);
 * UNAVAILABLE when the services could not be reached.
 */
enum csi_code spfs_check_explain(int status, const char *report,
				 struct buf *msg);

/* The last error line spfs logged ("... error: TEXT") in log, or its last
 * line: why a daemon exited before mounting. Into *msg. */
void spfs_log_explain(const char *log, struct buf *msg);

#endif
