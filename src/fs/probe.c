/* SPDX-License-Identifier: MIT */
/*
 * What the Kubernetes probes ask, answered without blocking the asker:
 *  - mounted (startup): between fs_start_sync and fs_stop_sync;
 *  - ready: mounted, and the root's last listing by the watchdog succeeded,
 *    from the network or from the cache (an outage with a cached tree is
 *    ready; a root that cannot be listed at all is not);
 *  - healthy (liveness): no watchdog operation has been running longer than
 *    it may. The watchdog thread times two real operations every
 *    PROBE_PERIOD: a getattr of the root (the metadata store's lock and
 *    sqlite, never the network) and a readdir of the root (the listing lock,
 *    and Graph when the listing is missing or stale, bounded by
 *    read_timeout). A store stuck in D state, or a lock never released,
 *    keeps an operation running, and the probe fails while the process
 *    still looks alive.
 * The probe answers read atomics only, so a wedged filesystem cannot wedge
 * the probe server too.
 */
#include "config.h"

#include "fs/fs.h"
#include "fs/fs_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "base/log.h"

#define PROBE_PERIOD_S 5
/* Beyond read_timeout, what a listing may take to store its result. */
#define LISTING_SLACK_S 30

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs before each operation: 0 never, else the monotonic ms it began. */
static void op_begin(struct fs *fs, double allowed_s)
{
	atomic_store(&fs->probe_op_allowed_ms, (long long)(allowed_s * 1000));
	atomic_store(&fs->probe_op_since_ms, mono_ms());
}

static void op_end(struct fs *fs)
{
	atomic_store(&fs->probe_op_since_ms, 0);
}

static int count_entry(void *ctx, const struct fs_dirent *e)
{
	(void)e;
	(*(size_t *)ctx)++;
	return 0;
}

/* Sleeps one period; false when asked to stop. */
static bool probe_wait(struct fs *fs)
{
	struct timespec until;
	bool go_on;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += PROBE_PERIOD_S;
	pthread_mutex_lock(&fs->probe_lock);
	while (!fs->probe_stop &&
	       pthread_cond_timedwait(&fs->probe_cond, &fs->probe_lock,
				      &until) == 0)
		;
	go_on = !fs->probe_stop;
	pthread_mutex_unlock(&fs->probe_lock);
	return go_on;
}

static void *probe_main(void *arg)
{
	struct fs *fs = arg;
	bool was_listed = false;

	do {
		struct fs_attr attr;
		size_t n = 0;

		op_begin(fs, fs->cfg.liveness_timeout);
		int err = fs_getattr(fs, FS_ROOT_INO, &attr);
		op_end(fs);
		if (err)
			log_warn("probe: the mounted folder's attributes: %s",
				 strerror(-err));

		op_begin(fs, fs->cfg.read_timeout + LISTING_SLACK_S +
				 fs->cfg.liveness_timeout);
		err = fs_readdir(fs, FS_ROOT_INO, count_entry, &n);
		op_end(fs);
		atomic_store(&fs->root_listed, err == 0);
		if (err && was_listed)
			log_warn("probe: the library's root cannot be listed "
				 "(%s): not ready",
				 strerror(-err));
		else if (!err && !was_listed)
			log_info("probe: the library's root lists %zu entries: "
				 "ready",
				 n);
		was_listed = err == 0;
	} while (probe_wait(fs));
	return NULL;
}

int fs_probe_start(struct fs *fs)
{
	if (fs->probe_running)
		return 0;
	fs->probe_stop = false;
	int rc = pthread_create(&fs->probe_thread, NULL, probe_main, fs);
	if (rc)
		return -rc;
	fs->probe_running = true;
	return 0;
}

void fs_probe_stop(struct fs *fs)
{
	if (!fs->probe_running)
		return;
	pthread_mutex_lock(&fs->probe_lock);
	fs->probe_stop = true;
	pthread_cond_broadcast(&fs->probe_cond);
	pthread_mutex_unlock(&fs->probe_lock);
	pthread_join(fs->probe_thread, NULL);
	fs->probe_running = false;
	atomic_store(&fs->root_listed, false);
}

bool fs_mounted(struct fs *fs)
{
	return atomic_load(&fs->serving);
}

bool fs_ready(struct fs *fs)
{
	return atomic_load(&fs->serving) && atomic_load(&fs->root_listed);
}

bool fs_healthy(struct fs *fs, double *stuck_s)
{
	long long since = atomic_load(&fs->probe_op_since_ms);
	long long allowed = atomic_load(&fs->probe_op_allowed_ms);
	long long running = since ? mono_ms() - since : 0;

	*stuck_s = (double)running / 1000.0;
	return !since || running <= allowed;
}
