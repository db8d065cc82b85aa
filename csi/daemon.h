/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_DAEMON_H
#define SPFS_CSI_DAEMON_H

/*
 * One spfs process of the mounter: its files, its process, its output.
 *
 * Locking: fields marked (lock) are guarded by the mounter's sync.lock;
 * `op_lock` serializes the slow work on one daemon (start, stop, binds of
 * its targets) and is taken before sync.lock, never while holding it. Only
 * the supervisor thread reaps the process (waitpid on its pid) and reads
 * its output pipe; starters wait on sync.changed for it.
 */

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "base/buf.h"
#include "csi/mounter.h"
#include "csi/volume.h"

struct daemon_sync {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* broadcast when a daemon exits or mounts */
	int wake_fd;		/* eventfd: the supervisor re-reads its set */
};

struct daemon {
	struct daemon *next; /* (lock) the mounter's list */
	char key[CSI_KEY_LEN + 1];
	struct csi_volume spec; /* source, identity, options: no token */
	char *mnt, *token_file, *cache_dir; /* owned paths */
	pthread_mutex_t op_lock;
	/* (lock) */
	int refs;	      /* threads holding the entry */
	int ntargets;	      /* targets bound to it */
	pid_t pid;	      /* the running spfs, 0 when none */
	int pidfd, log_fd;    /* -1 when none */
	bool exited;	      /* pid has exited (and was reaped) */
	bool stopping;	      /* stopped on purpose: do not restart */
	bool removed;	      /* its files are gone; the entry is unused */
	bool restart_pending; /* restart_at is set */
	double started_at, restart_at;
	unsigned crashes; /* consecutive crashes soon after starting */
	long long token_expires_at;
	struct buf log_tail; /* spfs's last lines, for error messages */
	struct buf log_line; /* a line being read */
};

/* A new entry (files not created yet). NULL on -ENOMEM. */
struct daemon *daemon_new(const char *state_dir, const char *key,
			  const struct csi_volume *spec);
void daemon_free(struct daemon *d);

/* Runs `spfs --check SOURCE` with the daemon's token file: does Entra take
 * the identity, does Graph show the library? CSI_OK or the code and one
 * line (spfs's explanation) in *msg. */
enum csi_code daemon_check(struct daemon *d, const struct mounter_config *cfg,
			   struct buf *msg);

/* (op_lock) Starts spfs and waits until it has mounted, or exited, or
 * mount_timeout passed (then it is killed). CSI_OK or a code and *msg. */
enum csi_code daemon_start(struct daemon *d, struct daemon_sync *s,
			   const struct mounter_config *cfg, struct buf *msg);

/* (op_lock) Whether spfs runs and its mount is in place; its device in
 * *devno. */
bool daemon_running(struct daemon *d, struct daemon_sync *s, dev_t *devno);

/* (op_lock) SIGTERM, then SIGKILL after a grace period; waits until it is
 * gone and detaches its mount. */
void daemon_stop(struct daemon *d, struct daemon_sync *s);

/* (lock; supervisor only) The pidfd became readable: reap the process. */
void daemon_reap(struct daemon *d, struct daemon_sync *s);
/* (lock; supervisor only) The output pipe is readable: relay complete
 * lines to our stderr ("spfs[KEY8]: ..."), remember the last ones. */
void daemon_relay(struct daemon *d);

double daemon_now(void);

#endif
