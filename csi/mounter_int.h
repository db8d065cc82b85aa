/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CSI_MOUNTER_INT_H
#define SPFS_CSI_MOUNTER_INT_H

/*
 * The mounter's insides, shared by its three files: mounter.c (lists,
 * start-up recovery, the server loop), requests.c (publish, unpublish,
 * status, restarts) and supervisor.c (the thread that watches the
 * daemons).
 *
 * Threads: the main thread accepts connections (and SIGTERM through a
 * signalfd); each connection gets a short-lived worker; restarts run in
 * short-lived threads too; the supervisor polls every daemon's pidfd and
 * output pipe, reaps, relays and schedules restarts.
 *
 * Locks: s.lock guards the daemon and target lists and the daemons'
 * (lock) fields; it is held briefly and never across a spawn, a wait or a
 * mount. A daemon's op_lock is taken first and held across the slow work
 * on that daemon (check, start, binds, stop): publishes for one identity
 * and library queue behind each other, others run in parallel. Entries are
 * reference counted (refs), so no thread holds a freed daemon.
 */

#include <stdbool.h>

#include "csi/daemon.h"
#include "csi/mounter.h"
#include "csi/state.h"

#define MAX_WORKERS 64

struct target {
	struct target *next;
	struct state_target rec;
};

struct mounter {
	const struct mounter_config *cfg;
	struct daemon_sync s;
	struct daemon *daemons; /* (lock) */
	struct target *targets; /* (lock) */
	bool stopping;		/* (lock) no new work */
	bool supervisor_stop;	/* (lock) */
	int workers;		/* (lock) live worker and restart threads */
};

/* What a worker or restart thread is given. */
struct worker {
	struct mounter *m;
	int fd;		  /* the connection (workers) */
	struct daemon *d; /* the daemon, with a ref (restarts) */
};

struct daemon *mounter_find_daemon_locked(struct mounter *m, const char *key);
struct target *mounter_find_target_locked(struct mounter *m, const char *path);
/* The daemon for key with a ref taken; created from spec (its files not
 * yet written: removed = true) when there is none and spec is given. */
struct daemon *mounter_daemon_get(struct mounter *m, const char *key,
				  const struct csi_volume *spec);
/* Drops a ref; frees an unused, removed entry. */
void mounter_daemon_put(struct mounter *m, struct daemon *d);
void mounter_daemon_put_locked(struct mounter *m, struct daemon *d);
void mounter_target_unlink_locked(struct mounter *m, struct target *t);
void mounter_wake(struct mounter *m);
/* (lock) A detached thread running fn(w), counted in workers. */
bool mounter_start_thread_locked(struct mounter *m, void *(*fn)(void *),
				 struct worker *w);
void mounter_worker_done(struct mounter *m);

/* requests.c */
void *mounter_connection_main(void *arg);
void *mounter_restart_main(void *arg);

/* supervisor.c */
/* (lock) A crash: restart at restart_delay, doubling while it keeps
 * crashing within a minute of its start. */
void mounter_schedule_restart_locked(struct mounter *m, struct daemon *d);
void *mounter_supervisor_main(void *arg);

#endif
