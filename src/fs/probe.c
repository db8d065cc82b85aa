/* SPDX-License-Identifier: MIT */
/*
 * What the Kubernetes probes ask, answered without blocking the asker:
 *  - mounted (startup): between fs_start_sync and fs_stop_sync;
 *  - ready: mounted, and the root's last listing by the lister thread
 *    succeeded, from the network or from the cache (an outage with a cached
 *    tree is ready; a root that cannot be listed at all is not);
 *  - healthy (liveness): the liveness thread's getattr of the root, a real
 *    metadata operation (the store's lock and sqlite, never the network),
 *    has not been running for more than liveness_timeout. A store stuck in
 *    D state, or its lock never released, keeps it running, and the probe
 *    fails while the process still looks alive.
 * Two threads, every PROBE_PERIOD: a listing may wait on Graph for as long
 * as retries and throttling take, which must neither count as a wedge nor
 * keep the getattr from being timed.
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

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* Times a getattr of the root: what liveness is about. */
static void *liveness_main(void *arg)
{
	struct fs *fs = arg;

	do {
		struct fs_attr attr;

		atomic_store(&fs->probe_op_since_ms, mono_ms());
		int err = fs_getattr(fs, FS_ROOT_INO, &attr);
		atomic_store(&fs->probe_op_since_ms, 0);
		if (err)
			log_warn("probe: the mounted folder's attributes: %s",
				 strerror(-err));
	} while (probe_wait(fs));
	return NULL;
}

/* Lists the root (from the cache, or Graph when it must): readiness. */
static void *lister_main(void *arg)
{
	struct fs *fs = arg;
	bool was_listed = false;

	do {
		size_t n = 0;
		int err = fs_readdir(fs, FS_ROOT_INO, count_entry, &n);

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
	void *(*const mains[2])(void *) = {liveness_main, lister_main};

	if (fs->nprobe_threads)
		return 0;
	fs->probe_stop = false;
	for (int i = 0; i < 2; i++) {
		int rc =
		    pthread_create(&fs->probe_threads[i], NULL, mains[i], fs);
		if (rc) {
			fs_probe_stop(fs);
			return -rc;
		}
		fs->nprobe_threads++;
	}
	return 0;
}

void fs_probe_stop(struct fs *fs)
{
	pthread_mutex_lock(&fs->probe_lock);
	fs->probe_stop = true;
	pthread_cond_broadcast(&fs->probe_cond);
	pthread_mutex_unlock(&fs->probe_lock);
	for (int i = 0; i < fs->nprobe_threads; i++)
		pthread_join(fs->probe_threads[i], NULL);
	fs->nprobe_threads = 0;
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
	long long running = since ? mono_ms() - since : 0;

	*stuck_s = (double)running / 1000.0;
	return running <= (long long)(fs->cfg.liveness_timeout * 1000);
}
