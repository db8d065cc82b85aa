/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_SPAWN_H
#define SPFS_CSI_SPAWN_H

/*
 * Starting spfs from the (threaded) mounter: fork and exec with a clean
 * environment (PATH, HOME and a few locale and sanitizer variables, never
 * the mounter's credentials), a fresh session, default signal handling,
 * stdin from /dev/null and stdout+stderr into a pipe.
 */

#include <sys/types.h>

#include "base/buf.h"

/* Starts argv[0] (an absolute path). *out_fd: the read end of the output
 * pipe (non-blocking, close-on-exec). 0 or -errno. */
int spawn_start(char *const argv[], pid_t *pid, int *out_fd);

/*
 * Runs argv to completion, collecting its output (up to out->max bytes,
 * the rest read and dropped). After timeout_ms the child is killed.
 * Returns the exit status (0-255), 128 + signal for a killed child, or
 * -errno (-ETIMEDOUT after killing it).
 */
int spawn_run(char *const argv[], int timeout_ms, struct buf *out);

#endif
