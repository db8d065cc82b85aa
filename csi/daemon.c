/* SPDX-License-Identifier: MIT */
/*
 * An spfs process: started by a request thread (or a restart), watched by
 * the supervisor through a pidfd, its output relayed line by line to the
 * mounter's stderr (where `kubectl logs` finds it) with the daemon's key in
 * front, the last lines kept to explain a failed start.
 *
 * The mount is detected in /proc/self/mountinfo (fuse.spfs at the daemon's
 * mountpoint), never by stat(), which a wedged daemon would block.
 */
#include "config.h"

#include "csi/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "csi/mountinfo.h"
#include "csi/spawn.h"
#include "csi/spfs_cmd.h"
#include "csi/state.h"

#define TAIL_MAX   4096
#define LINE_MAX_  4096
#define CHECK_OUT  (64 * 1024)
#define STOP_GRACE 10.0

double daemon_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dup_or_null(char **dst, const char *src)
{
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

struct daemon *daemon_new(const char *state_dir, const char *key,
			  const struct csi_volume *spec)
{
	struct daemon *d = calloc(1, sizeof(*d));
	struct buf p;
	int err = 0;

	if (!d)
		return NULL;
	csi_volume_init(&d->spec);
	memcpy(d->key, key, CSI_KEY_LEN + 1);
	d->pidfd = d->log_fd = -1;
	buf_init(&d->log_tail, TAIL_MAX);
	buf_init(&d->log_line, LINE_MAX_);
	pthread_mutex_init(&d->op_lock, NULL);
	err = err ? err : dup_or_null(&d->spec.source, spec->source);
	err = err ? err : dup_or_null(&d->spec.client_id, spec->client_id);
	err = err ? err : dup_or_null(&d->spec.tenant_id, spec->tenant_id);
	err = err ? err : dup_or_null(&d->spec.namespace_, spec->namespace_);
	err =
	    err ? err
		: dup_or_null(&d->spec.service_account, spec->service_account);
	err = err ? err
		  : dup_or_null(&d->spec.options,
				spec->options ? spec->options : "");
	buf_init(&p, 4096);
	err = err ? err : state_daemon_path(&p, state_dir, key, "mnt");
	err = err ? err : dup_or_null(&d->mnt, p.data);
	err = err ? err : state_daemon_path(&p, state_dir, key, "token");
	err = err ? err : dup_or_null(&d->token_file, p.data);
	err = err ? err : state_daemon_path(&p, state_dir, key, "cache");
	err = err ? err : dup_or_null(&d->cache_dir, p.data);
	buf_release(&p);
	if (err) {
		daemon_free(d);
		return NULL;
	}
	return d;
}

void daemon_free(struct daemon *d)
{
	if (!d)
		return;
	if (d->pidfd >= 0)
		close(d->pidfd);
	if (d->log_fd >= 0)
		close(d->log_fd);
	csi_volume_release(&d->spec);
	free(d->mnt);
	free(d->token_file);
	free(d->cache_dir);
	buf_release(&d->log_tail);
	buf_release(&d->log_line);
	pthread_mutex_destroy(&d->op_lock);
	free(d);
}

static void wake(struct daemon_sync *s)
{
	uint64_t one = 1;

	if (write(s->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("mounter: cannot wake the supervisor: %s",
			 strerror(errno));
}

/* Waits on sync.changed for up to `seconds` (lock held). */
static void wait_changed(struct daemon_sync *s, double seconds)
{
	struct timespec ts;
	double t;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + seconds;
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	pthread_cond_timedwait(&s->changed, &s->lock, &ts);
}

static struct spfs_cmd_files files_of(const struct daemon *d)
{
	return (struct spfs_cmd_files){.mnt = d->mnt,
				       .token_file = d->token_file,
				       .cache_dir = d->cache_dir};
}

enum csi_code daemon_check(struct daemon *d, const struct mounter_config *cfg,
			   struct buf *msg)
{
	struct spfs_cmd_files f = files_of(d);
	struct spfs_cmd cmd;
	struct buf out;
	enum csi_code code = CSI_OK;
	int status;

	if (spfs_cmd_build(&cmd, cfg->spfs_path, true, &d->spec, &f,
			   cfg->spfs_options) != 0)
		return CSI_INTERNAL;
	buf_init(&out, CHECK_OUT);
	status = spawn_run(cmd.argv, (int)(cfg->mount_timeout * 1000), &out);
	if (status != 0 && status != 1 && status != 2) {
		/* Not a failure spfs reported (1) or a usage error (2): keep
		 * what it printed, its end at least (no tokens in it). */
		size_t n = out.len > 2048 ? 2048 : out.len;
		log_warn("mounter: %s: spfs --check ended with status %d; the "
			 "end of its output: %.*s",
			 d->key, status, (int)n,
			 out.data ? out.data + out.len - n : "");
	}
	if (status != 0) {
		buf_appendf(msg, "%s as client %s (service account %s/%s): ",
			    d->spec.source, d->spec.client_id,
			    d->spec.namespace_, d->spec.service_account);
		if (status < 0 && status != -ETIMEDOUT) {
			buf_appendf(msg, "cannot run %s: %s", cfg->spfs_path,
				    strerror(-status));
			code = CSI_INTERNAL;
		} else {
			code = spfs_check_explain(status, buf_str(&out), msg);
		}
	}
	buf_release(&out);
	spfs_cmd_release(&cmd);
	return code;
}

bool daemon_running(struct daemon *d, struct daemon_sync *s, dev_t *devno)
{
	bool alive;

	pthread_mutex_lock(&s->lock);
	alive = d->pid > 0 && !d->exited;
	pthread_mutex_unlock(&s->lock);
	return alive && mountinfo_is_spfs(NULL, d->mnt, devno);
}

enum csi_code daemon_start(struct daemon *d, struct daemon_sync *s,
			   const struct mounter_config *cfg, struct buf *msg)
{
	struct spfs_cmd_files f = files_of(d);
	struct spfs_cmd cmd;
	double deadline;
	pid_t pid;
	int fd, pidfd, err;

	/* A dead predecessor's mount would hide the new one. */
	mount_detach_spfs(d->mnt);
	if (spfs_cmd_build(&cmd, cfg->spfs_path, false, &d->spec, &f,
			   cfg->spfs_options) != 0)
		return CSI_INTERNAL;
	err = spawn_start(cmd.argv, &pid, &fd);
	spfs_cmd_release(&cmd);
	if (err) {
		buf_appendf(msg, "cannot run %s: %s", cfg->spfs_path,
			    strerror(-err));
		return CSI_INTERNAL;
	}
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		err = errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(fd);
		buf_appendf(msg, "pidfd_open: %s (Linux 5.3 or later needed)",
			    strerror(err));
		return CSI_INTERNAL;
	}
	pthread_mutex_lock(&s->lock);
	d->pid = pid;
	d->pidfd = pidfd;
	d->log_fd = fd;
	d->exited = false;
	d->stopping = false;
	d->started_at = daemon_now();
	buf_reset(&d->log_tail);
	buf_reset(&d->log_line);
	pthread_mutex_unlock(&s->lock);
	wake(s);
	log_info("mounter: %s: started spfs (pid %d) for %s as %s/%s", d->key,
		 (int)pid, d->spec.source, d->spec.namespace_,
		 d->spec.service_account);

	deadline = daemon_now() + cfg->mount_timeout;
	pthread_mutex_lock(&s->lock);
	while (!d->exited && daemon_now() < deadline) {
		bool mounted;
		pthread_mutex_unlock(&s->lock);
		mounted = mountinfo_is_spfs(NULL, d->mnt, NULL);
		pthread_mutex_lock(&s->lock);
		if (mounted && !d->exited) {
			pthread_mutex_unlock(&s->lock);
			return CSI_OK;
		}
		wait_changed(s, 0.02);
	}
	if (!d->exited) {
		pthread_mutex_unlock(&s->lock);
		kill(pid, SIGKILL);
		buf_appendf(msg, "spfs did not mount %s within %.0f s",
			    d->spec.source, cfg->mount_timeout);
		pthread_mutex_lock(&s->lock);
		while (!d->exited)
			wait_changed(s, 1);
		pthread_mutex_unlock(&s->lock);
		return CSI_DEADLINE_EXCEEDED;
	}
	/* The supervisor has relayed its last words into the tail. */
	bool refused = strstr(buf_str(&d->log_tail), "AADSTS") != NULL;
	buf_appendf(msg, "spfs exited before mounting %s: ", d->spec.source);
	spfs_log_explain(buf_str(&d->log_tail), msg);
	pthread_mutex_unlock(&s->lock);
	return refused ? CSI_PERMISSION_DENIED : CSI_UNAVAILABLE;
}

void daemon_stop(struct daemon *d, struct daemon_sync *s)
{
	double deadline;
	pid_t pid;

	pthread_mutex_lock(&s->lock);
	d->stopping = true;
	d->restart_pending = false;
	pid = d->exited ? 0 : d->pid;
	if (pid > 0) {
		kill(pid, SIGTERM);
		deadline = daemon_now() + STOP_GRACE;
		while (!d->exited && daemon_now() < deadline)
			wait_changed(s, 0.1);
		if (!d->exited) {
			log_warn("mounter: %s: spfs (pid %d) ignored SIGTERM "
				 "for %.0f s; killing it",
				 d->key, (int)pid, STOP_GRACE);
			kill(pid, SIGKILL);
			while (!d->exited)
				wait_changed(s, 1);
		}
	}
	pthread_mutex_unlock(&s->lock);
	mount_detach_spfs(d->mnt);
}

static void tail_append(struct buf *tail, const char *line, size_t n)
{
	if (n + 1 > tail->max)
		n = tail->max - 1;
	if (tail->len + n + 1 > tail->max) {
		/* Keep the newer half. */
		size_t drop = tail->len - tail->len / 2;
		memmove(tail->data, tail->data + drop, tail->len - drop);
		tail->len -= drop;
		tail->data[tail->len] = '\0';
		if (tail->len + n + 1 > tail->max)
			buf_reset(tail);
	}
	buf_append(tail, line, n);
	buf_append(tail, "\n", 1);
}

static void emit_line(struct daemon *d, const char *line, size_t n)
{
	struct buf out;

	buf_init(&out, LINE_MAX_ + 64);
	buf_appendf(&out, "spfs[%.8s] %.*s\n", d->key, (int)n, line);
	if (write(STDERR_FILENO, out.data, out.len) < 0) {
		/* Nowhere to report that. */
	}
	buf_release(&out);
	tail_append(&d->log_tail, line, n);
}

void daemon_relay(struct daemon *d)
{
	char chunk[8192];
	ssize_t n;

	while (d->log_fd >= 0) {
		n = read(d->log_fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			if (d->log_line.len)
				emit_line(d, d->log_line.data, d->log_line.len);
			buf_reset(&d->log_line);
			close(d->log_fd);
			d->log_fd = -1;
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] == '\n' ||
			    d->log_line.len + 1 >= d->log_line.max) {
				emit_line(d, buf_str(&d->log_line),
					  d->log_line.len);
				buf_reset(&d->log_line);
				if (chunk[i] == '\n')
					continue;
			}
			buf_append(&d->log_line, &chunk[i], 1);
		}
	}
}

void daemon_reap(struct daemon *d, struct daemon_sync *s)
{
	int status = 0;
	pid_t w;

	if (d->pid <= 0)
		return;
	do
		w = waitpid(d->pid, &status, WNOHANG);
	while (w < 0 && errno == EINTR);
	if (w == 0)
		return; /* not yet */
	if (w < 0)
		status = 0; /* reaped elsewhere (never by us): it is gone */
	daemon_relay(d);    /* its last words */
	if (d->stopping)
		log_info("mounter: %s: spfs (pid %d) stopped", d->key,
			 (int)d->pid);
	else
		log_warn("mounter: %s: spfs (pid %d) %s %d", d->key,
			 (int)d->pid,
			 WIFSIGNALED(status) ? "was killed by signal"
					     : "exited with status",
			 WIFSIGNALED(status) ? WTERMSIG(status)
					     : WEXITSTATUS(status));
	close(d->pidfd);
	d->pidfd = -1;
	d->pid = 0;
	d->exited = true;
	pthread_cond_broadcast(&s->changed);
}
