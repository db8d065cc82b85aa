/* SPDX-License-Identifier: MIT */
/*
 * The mounter's lists, its start-up (bringing back every daemon and
 * target the previous mounter served, from the state directory) and its
 * server loop. Threads and locks: see mounter_int.h.
 */
#include "config.h"

#include "csi/mounter.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "csi/mounter_int.h"
#include "csi/mountinfo.h"
#include "csi/wire.h"

/* ---- the lists ---------------------------------------------------------- */

struct daemon *mounter_find_daemon_locked(struct mounter *m, const char *key)
{
	for (struct daemon *d = m->daemons; d; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	return NULL;
}

struct target *mounter_find_target_locked(struct mounter *m, const char *path)
{
	for (struct target *t = m->targets; t; t = t->next)
		if (strcmp(t->rec.target, path) == 0)
			return t;
	return NULL;
}

/* The daemon for key, created from spec when there is none; with a ref. */
struct daemon *mounter_daemon_get(struct mounter *m, const char *key,
				  const struct csi_volume *spec)
{
	struct daemon *d;

	pthread_mutex_lock(&m->s.lock);
	d = mounter_find_daemon_locked(m, key);
	if (!d && spec) {
		d = daemon_new(m->cfg->state_dir, key, spec);
		if (d) {
			d->removed = true; /* no files yet */
			d->next = m->daemons;
			m->daemons = d;
		}
	}
	if (d)
		d->refs++;
	pthread_mutex_unlock(&m->s.lock);
	return d;
}

void mounter_daemon_put_locked(struct mounter *m, struct daemon *d)
{
	if (--d->refs > 0 || !d->removed || d->ntargets > 0 || d->pid > 0)
		return;
	for (struct daemon **p = &m->daemons; *p; p = &(*p)->next) {
		if (*p == d) {
			*p = d->next;
			daemon_free(d);
			return;
		}
	}
}

void mounter_daemon_put(struct mounter *m, struct daemon *d)
{
	pthread_mutex_lock(&m->s.lock);
	mounter_daemon_put_locked(m, d);
	pthread_mutex_unlock(&m->s.lock);
}

void mounter_target_unlink_locked(struct mounter *m, struct target *t)
{
	for (struct target **p = &m->targets; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			state_target_release(&t->rec);
			free(t);
			return;
		}
	}
}

void mounter_wake(struct mounter *m)
{
	uint64_t one = 1;

	if (write(m->s.wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("mounter: cannot wake the supervisor: %s",
			 strerror(errno));
}

void mounter_worker_done(struct mounter *m)
{
	pthread_mutex_lock(&m->s.lock);
	m->workers--;
	pthread_cond_broadcast(&m->s.changed);
	pthread_mutex_unlock(&m->s.lock);
}

bool mounter_start_thread_locked(struct mounter *m, void *(*fn)(void *),
				 struct worker *w)
{
	pthread_attr_t attr;
	pthread_t th;
	bool ok;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ok = pthread_create(&th, &attr, fn, w) == 0;
	pthread_attr_destroy(&attr);
	if (ok)
		m->workers++;
	return ok;
}

/* ---- start-up: bring back what the last mounter served ---------------- */

static void load_daemon(void *ctx, const char *key, struct csi_volume *v)
{
	struct mounter *m = ctx;
	struct daemon *d = daemon_new(m->cfg->state_dir, key, v);

	if (!d) {
		log_error("mounter: out of memory loading daemon %s", key);
		return;
	}
	d->next = m->daemons;
	m->daemons = d;
}

static void load_target(void *ctx, struct state_target *rec)
{
	struct mounter *m = ctx;
	struct target *t = calloc(1, sizeof(*t));

	if (!t)
		return;
	t->rec = *rec;
	memset(rec, 0, sizeof(*rec));
	t->next = m->targets;
	m->targets = t;
}

/* A daemon of an earlier mounter that still runs (a mounter outside a
 * container or pid namespace leaves them) is known by its mountpoint on
 * its command line; it is stopped before its successor starts. */
static void kill_stale(struct mounter *m, struct daemon *d)
{
	pid_t pid = state_read_pid(m->cfg->state_dir, d->key);
	char path[64], args[8192];
	ssize_t n;
	int fd;

	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, args, sizeof(args) - 1);
	close(fd);
	for (ssize_t i = 0; n > 0 && i < n;
	     i += (ssize_t)strlen(args + i) + 1) {
		args[n] = '\0';
		if (strcmp(args + i, d->mnt) == 0) {
			log_warn("mounter: %s: stopping spfs pid %d left by "
				 "an earlier mounter",
				 d->key, (int)pid);
			kill(pid, SIGKILL);
			break;
		}
	}
}

static void recover(struct mounter *m)
{
	unsigned nd = 0, nt = 0;
	double now = daemon_now();

	state_load(m->cfg->state_dir, load_daemon, load_target, m);
	for (struct target **p = &m->targets; *p;) {
		struct target *t = *p;
		struct daemon *d = mounter_find_daemon_locked(m, t->rec.key);
		char *slash = strrchr(t->rec.target, '/');
		bool parent_there = false;
		if (slash && slash != t->rec.target) {
			*slash = '\0';
			parent_there = access(t->rec.target, F_OK) == 0;
			*slash = '/';
		}
		if (d && parent_there) {
			d->ntargets++;
			nt++;
			p = &t->next;
			continue;
		}
		/* Its pod is gone (or its daemon's record is): clean up. */
		mount_detach_spfs(t->rec.target);
		rmdir(t->rec.target);
		state_remove_target(m->cfg->state_dir, t->rec.target);
		*p = t->next;
		state_target_release(&t->rec);
		free(t);
	}
	for (struct daemon **p = &m->daemons; *p;) {
		struct daemon *d = *p;
		kill_stale(m, d);
		mount_detach_spfs(d->mnt);
		if (d->ntargets == 0) {
			state_remove_daemon(m->cfg->state_dir, d->key);
			*p = d->next;
			daemon_free(d);
			continue;
		}
		d->restart_pending = true;
		d->restart_at = now;
		d->started_at = now - 3600;
		nd++;
		p = &d->next;
	}
	if (nd || nt)
		log_info("mounter: restoring %u daemons and %u targets from %s",
			 nd, nt, m->cfg->state_dir);
}

/* ---- the server ---------------------------------------------------------- */

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	return cred.uid == 0 || cred.uid == geteuid();
}

static void accept_one(struct mounter *m, int listen_fd)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	struct worker *w;

	if (fd < 0)
		return;
	if (!peer_allowed(fd)) {
		log_warn("mounter: refused a connection from another user");
		close(fd);
		return;
	}
	w = calloc(1, sizeof(*w));
	pthread_mutex_lock(&m->s.lock);
	if (w && m->workers < MAX_WORKERS && !m->stopping) {
		*w = (struct worker){.m = m, .fd = fd};
		if (mounter_start_thread_locked(m, mounter_connection_main,
						w)) {
			pthread_mutex_unlock(&m->s.lock);
			return;
		}
	}
	pthread_mutex_unlock(&m->s.lock);
	free(w);
	struct buf out;
	buf_init(&out, 1024);
	if (wire_reply_encode(CSI_UNAVAILABLE,
			      "the mounter is busy or stopping", NULL,
			      &out) == 0)
		wire_send(fd, out.data, out.len);
	buf_release(&out);
	close(fd);
}

static void shut_down(struct mounter *m, pthread_t supervisor)
{
	double deadline = daemon_now() + 15;

	pthread_mutex_lock(&m->s.lock);
	m->stopping = true;
	while (m->workers > 0 && daemon_now() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&m->s.changed, &m->s.lock, &ts);
	}
	for (struct daemon *d = m->daemons; d; d = d->next)
		d->refs++;
	pthread_mutex_unlock(&m->s.lock);
	/* The daemons stop; their records stay for the next mounter. */
	for (struct daemon *d = m->daemons; d; d = d->next) {
		pthread_mutex_lock(&d->op_lock);
		daemon_stop(d, &m->s);
		pthread_mutex_unlock(&d->op_lock);
	}
	pthread_mutex_lock(&m->s.lock);
	m->supervisor_stop = true;
	pthread_mutex_unlock(&m->s.lock);
	mounter_wake(m);
	pthread_join(supervisor, NULL);
	while (m->daemons) {
		struct daemon *d = m->daemons;
		m->daemons = d->next;
		daemon_free(d);
	}
	while (m->targets) {
		struct target *t = m->targets;
		m->targets = t->next;
		state_target_release(&t->rec);
		free(t);
	}
}

int mounter_run(const struct mounter_config *given)
{
	struct mounter_config cfg = *given;
	struct mounter m = {.cfg = &cfg};
	char state_dir[PATH_MAX];
	pthread_condattr_t ca;
	pthread_t supervisor;
	sigset_t sigs;
	int listen_fd = -1, sig_fd = -1, err, status = 1;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	err = state_init(cfg.state_dir);
	if (err || !realpath(cfg.state_dir, state_dir)) {
		log_error("mounter: state directory %s: %s", cfg.state_dir,
			  strerror(err ? -err : errno));
		return 1;
	}
	cfg.state_dir = state_dir;
	pthread_mutex_init(&m.s.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m.s.changed, &ca);
	pthread_condattr_destroy(&ca);
	m.s.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
	listen_fd = wire_listen(cfg.socket_path);
	if (m.s.wake_fd < 0 || sig_fd < 0 || listen_fd < 0) {
		log_error("mounter: cannot listen on %s: %s", cfg.socket_path,
			  strerror(listen_fd < 0 ? -listen_fd : errno));
		goto out;
	}
	recover(&m);
	if (pthread_create(&supervisor, NULL, mounter_supervisor_main, &m) !=
	    0) {
		log_error("mounter: cannot start the supervisor thread");
		goto out;
	}
	log_info("mounter: serving on %s; state in %s; spfs is %s",
		 cfg.socket_path, cfg.state_dir, cfg.spfs_path);
	for (;;) {
		struct pollfd p[2] = {{.fd = listen_fd, .events = POLLIN},
				      {.fd = sig_fd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("mounter: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;
			if (read(sig_fd, &si, sizeof(si)) > 0)
				log_info("mounter: signal %u: stopping the "
					 "daemons (their state is kept)",
					 si.ssi_signo);
			break;
		}
		if (p[0].revents)
			accept_one(&m, listen_fd);
	}
	shut_down(&m, supervisor);
	status = 0;
out:
	if (listen_fd >= 0) {
		close(listen_fd);
		unlink(cfg.socket_path);
	}
	if (sig_fd >= 0)
		close(sig_fd);
	if (m.s.wake_fd >= 0)
		close(m.s.wake_fd);
	pthread_cond_destroy(&m.s.changed);
	pthread_mutex_destroy(&m.s.lock);
	return status;
}
