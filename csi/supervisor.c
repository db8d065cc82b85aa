/* SPDX-License-Identifier: MIT */
/*
 * The supervisor thread: one poll() over every daemon's pidfd and output
 * pipe and an eventfd that says "the set changed". It reaps the daemons
 * (nobody else waits for them), relays their output, and starts a restart
 * thread when a crashed daemon's delay has passed. Threads and locks: see
 * mounter_int.h.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "csi/mounter_int.h"

#define RESTART_CAP 300.0

void mounter_schedule_restart_locked(struct mounter *m, struct daemon *d)
{
	double now = daemon_now(), delay, cap;

	if (now - d->started_at > 60)
		d->crashes = 0;
	d->crashes++;
	delay = m->cfg->restart_delay;
	for (unsigned i = 1; i < d->crashes && delay < RESTART_CAP; i++)
		delay *= 2;
	cap = m->cfg->restart_delay > RESTART_CAP ? m->cfg->restart_delay
						  : RESTART_CAP;
	if (delay > cap)
		delay = cap;
	d->restart_at = now + delay;
	d->restart_pending = true;
	log_info("mounter: %s: restarting spfs in %.1f s", d->key, delay);
}

/* (lock) Hands every daemon whose restart is due to a restart thread. */
static void start_due_restarts_locked(struct mounter *m)
{
	double now = daemon_now();

	for (struct daemon *d = m->daemons; d; d = d->next) {
		struct worker *w;
		if (!d->restart_pending || d->restart_at > now || m->stopping)
			continue;
		w = calloc(1, sizeof(*w));
		if (!w)
			continue;
		*w = (struct worker){.m = m, .fd = -1, .d = d};
		d->refs++;
		if (mounter_start_thread_locked(m, mounter_restart_main, w)) {
			d->restart_pending = false;
		} else {
			d->refs--;
			free(w);
		}
	}
}

struct watch {
	struct daemon *d;
	bool is_log;
};

void *mounter_supervisor_main(void *arg)
{
	struct mounter *m = arg;
	struct pollfd *pfds = NULL;
	struct watch *watch = NULL;
	size_t cap = 0;

	pthread_mutex_lock(&m->s.lock);
	while (!m->supervisor_stop) {
		size_t n = 1, need = 1, nheld = 0;
		double now = daemon_now(), next = -1;
		struct daemon **held;

		for (struct daemon *d = m->daemons; d; d = d->next)
			need += 2;
		if (need > cap) {
			struct pollfd *p = realloc(pfds, need * sizeof(*p));
			if (p)
				pfds = p;
			struct watch *w = realloc(watch, need * sizeof(*w));
			if (w)
				watch = w;
			if (p && w)
				cap = need;
		}
		held = need <= cap ? calloc(need, sizeof(*held)) : NULL;
		if (!held) {
			pthread_mutex_unlock(&m->s.lock);
			sleep(1); /* out of memory: try again */
			pthread_mutex_lock(&m->s.lock);
			continue;
		}
		/* A ref on every listed daemon keeps it alive through the
		 * round. */
		pfds[0] = (struct pollfd){.fd = m->s.wake_fd, .events = POLLIN};
		for (struct daemon *d = m->daemons; d; d = d->next) {
			d->refs++;
			held[nheld++] = d;
			if (d->pidfd >= 0) {
				pfds[n] = (struct pollfd){.fd = d->pidfd,
							  .events = POLLIN};
				watch[n++] = (struct watch){d, false};
			}
			if (d->log_fd >= 0) {
				pfds[n] = (struct pollfd){.fd = d->log_fd,
							  .events = POLLIN};
				watch[n++] = (struct watch){d, true};
			}
			if (d->restart_pending &&
			    (next < 0 || d->restart_at < next))
				next = d->restart_at;
		}
		pthread_mutex_unlock(&m->s.lock);

		int timeout = next < 0	    ? -1
			      : next <= now ? 0
					    : (int)((next - now) * 1000) + 1;
		if (poll(pfds, n, timeout) < 0 && errno != EINTR)
			log_warn("mounter: poll: %s", strerror(errno));

		pthread_mutex_lock(&m->s.lock);
		if (pfds[0].revents) {
			uint64_t v;
			if (read(m->s.wake_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: another wake was read already */
			}
		}
		for (size_t i = 1; i < n; i++) {
			struct daemon *d = watch[i].d;
			if (!pfds[i].revents)
				continue;
			if (watch[i].is_log) {
				daemon_relay(d);
				continue;
			}
			bool was_running = d->pid > 0;
			daemon_reap(d, &m->s);
			if (was_running && d->exited && !d->stopping &&
			    d->ntargets > 0 && !m->stopping)
				mounter_schedule_restart_locked(m, d);
		}
		start_due_restarts_locked(m);
		for (size_t i = 0; i < nheld; i++)
			mounter_daemon_put_locked(m, held[i]);
		free(held);
	}
	pthread_mutex_unlock(&m->s.lock);
	free(pfds);
	free(watch);
	return NULL;
}
