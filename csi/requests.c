/* SPDX-License-Identifier: MIT */
/*
 * What the mounter does for the plugin: publish (check the identity,
 * start or reuse the daemon, write the token, bind the target), unpublish
 * (detach, and stop the daemon after its last target), status; and the
 * restart of a crashed daemon, which binds its targets again. Threads and
 * locks: see mounter_int.h.
 */
#include "config.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "csi/mounter_int.h"
#include "csi/mountinfo.h"
#include "csi/wire.h"

/* The target path with its parent resolved (the kubelet's directory may
 * sit behind a symlink; mountinfo shows real paths). malloc'd. */
static char *canonical_target(const char *path)
{
	char parent[PATH_MAX], real[PATH_MAX], *slash;
	const char *base;

	if (strlen(path) >= sizeof(parent))
		return NULL;
	strcpy(parent, path);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return strdup(path);
	*slash = '\0';
	base = slash + 1;
	if (!realpath(parent, real))
		return strdup(path); /* gone: nothing can be mounted there */
	size_t n = strlen(real) + 1 + strlen(base) + 1;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%s/%s", real, base);
	return out;
}

/* ---- mounts ------------------------------------------------------------ */

/* (op_lock, daemon running) Makes target a read-only bind of the daemon's
 * mount; a target already bound to it is left alone, one bound to a dead
 * or another spfs mount is detached first. */
static enum csi_code bind_target(struct mounter *m, struct daemon *d,
				 const char *target, struct buf *msg)
{
	dev_t want = 0, have = 0;
	struct stat st;

	if (!daemon_running(d, &m->s, &want)) {
		buf_appendf(msg, "spfs for %s is not running", d->spec.source);
		return CSI_UNAVAILABLE;
	}
	if (mountinfo_is_spfs(NULL, target, &have)) {
		if (have == want)
			return CSI_OK;
		mount_detach_spfs(target);
	}
	if (mkdir(target, 0750) != 0 && errno != EEXIST) {
		int e = errno;
		buf_appendf(
		    msg, "cannot create target %s: %s%s", target, strerror(e),
		    e == ENOENT ? " (the CO creates its parent directory)"
				: "");
		return e == ENOENT ? CSI_FAILED_PRECONDITION : CSI_INTERNAL;
	}
	if (lstat(target, &st) != 0 || !S_ISDIR(st.st_mode)) {
		buf_appendf(msg, "target %s is not a directory", target);
		return CSI_INVALID_ARGUMENT;
	}
	if (mount(d->mnt, target, NULL, MS_BIND, NULL) != 0) {
		buf_appendf(msg, "bind mount on %s: %s", target,
			    strerror(errno));
		return CSI_INTERNAL;
	}
	if (mount(NULL, target, NULL,
		  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
		  NULL) != 0) {
		buf_appendf(msg, "read-only remount of %s: %s", target,
			    strerror(errno));
		umount2(target, MNT_DETACH);
		return CSI_INTERNAL;
	}
	return CSI_OK;
}

/* (op_lock, no targets left) Stops the daemon and deletes its files: the
 * token, the cache, the records. */
static void teardown(struct mounter *m, struct daemon *d)
{
	int err;

	daemon_stop(d, &m->s);
	err = state_remove_daemon(m->cfg->state_dir, d->key);
	if (err)
		log_warn("mounter: %s: cannot remove its files: %s", d->key,
			 strerror(-err));
	pthread_mutex_lock(&m->s.lock);
	d->removed = true;
	d->token_expires_at = 0;
	pthread_mutex_unlock(&m->s.lock);
	/* The supervisor holds a ref through its poll: wake it to let go. */
	mounter_wake(m);
	log_info("mounter: %s: no targets left; spfs stopped, token and "
		 "cache deleted",
		 d->key);
}

/* (op_lock) Rebinds every target of the daemon after a restart. */
static void rebind_all(struct mounter *m, struct daemon *d)
{
	char **paths = NULL;
	size_t n = 0;

	pthread_mutex_lock(&m->s.lock);
	for (struct target *t = m->targets; t; t = t->next)
		if (strcmp(t->rec.key, d->key) == 0)
			n++;
	paths = calloc(n + 1, sizeof(*paths));
	n = 0;
	for (struct target *t = m->targets; paths && t; t = t->next)
		if (strcmp(t->rec.key, d->key) == 0)
			paths[n++] = strdup(t->rec.target);
	pthread_mutex_unlock(&m->s.lock);
	for (size_t i = 0; paths && i < n; i++) {
		struct buf msg;
		buf_init(&msg, 2048);
		if (paths[i] && bind_target(m, d, paths[i], &msg) != CSI_OK)
			log_warn("mounter: %s: %s", d->key, buf_str(&msg));
		buf_release(&msg);
		free(paths[i]);
	}
	free(paths);
}

/* ---- requests ----------------------------------------------------------- */

static enum csi_code publish(struct mounter *m, struct csi_volume *v,
			     struct buf *msg)
{
	char key[CSI_KEY_LEN + 1];
	const struct mounter_config *cfg = m->cfg;
	enum csi_code code;
	struct daemon *d;
	struct target *t;
	bool republish;
	char *canon;
	int err;

	code = csi_volume_check(v, cfg->kubelet_dir, msg);
	if (code != CSI_OK)
		return code;
	canon = canonical_target(v->target);
	if (!canon)
		return CSI_INTERNAL;
	free(v->target);
	v->target = canon;
	csi_volume_key(v, key);

	pthread_mutex_lock(&m->s.lock);
	t = mounter_find_target_locked(m, v->target);
	if (t &&
	    (strcmp(t->rec.volume_id, v->volume_id) != 0 ||
	     strcmp(t->rec.key, key) != 0 || t->rec.readonly != v->readonly)) {
		buf_appendf(msg,
			    "target %s already holds volume %s published "
			    "with other attributes; unpublish it first",
			    v->target, t->rec.volume_id);
		pthread_mutex_unlock(&m->s.lock);
		return CSI_ALREADY_EXISTS;
	}
	pthread_mutex_unlock(&m->s.lock);
	d = mounter_daemon_get(m, key, v);
	if (!d)
		return CSI_INTERNAL;

	pthread_mutex_lock(&d->op_lock);
	pthread_mutex_lock(&m->s.lock);
	republish = mounter_find_target_locked(m, v->target) != NULL;
	bool newer = v->token.expires_at == 0 || d->removed ||
		     v->token.expires_at >= d->token_expires_at;
	pthread_mutex_unlock(&m->s.lock);

	err = state_save_daemon(cfg->state_dir, key, v);
	if (!err && newer)
		err = state_write_token(cfg->state_dir, key, &v->token);
	if (err) {
		buf_appendf(msg, "cannot write the daemon's files under %s: %s",
			    cfg->state_dir, strerror(-err));
		code = CSI_INTERNAL;
		goto out;
	}
	pthread_mutex_lock(&m->s.lock);
	d->removed = false;
	if (newer)
		d->token_expires_at = v->token.expires_at;
	bool first = d->ntargets == 0;
	pthread_mutex_unlock(&m->s.lock);

	if (!daemon_running(d, &m->s, NULL)) {
		/* A first publish asks Entra and Graph through spfs --check,
		 * so a refused identity fails here with its explanation. */
		code = first ? daemon_check(d, cfg, msg) : CSI_OK;
		if (code == CSI_OK)
			code = daemon_start(d, &m->s, cfg, msg);
		if (code != CSI_OK)
			goto out;
		state_write_pid(cfg->state_dir, key, d->pid);
	}
	code = bind_target(m, d, v->target, msg);
	if (code != CSI_OK || republish)
		goto out;
	t = calloc(1, sizeof(*t));
	if (t) {
		t->rec.volume_id = strdup(v->volume_id);
		t->rec.target = strdup(v->target);
		t->rec.readonly = v->readonly;
		memcpy(t->rec.key, key, sizeof(key));
	}
	if (!t || !t->rec.volume_id || !t->rec.target) {
		if (t)
			state_target_release(&t->rec);
		free(t);
		mount_detach_spfs(v->target);
		code = CSI_INTERNAL;
		goto out;
	}
	err = state_save_target(cfg->state_dir, &t->rec);
	if (err)
		log_warn("mounter: cannot record target %s: %s (a restarted "
			 "mounter will not restore it)",
			 v->target, strerror(-err));
	pthread_mutex_lock(&m->s.lock);
	t->next = m->targets;
	m->targets = t;
	d->ntargets++;
	pthread_mutex_unlock(&m->s.lock);
out:
	if (code == CSI_OK)
		log_info("mounter: %s %s on %s (daemon %s, %s/%s)",
			 republish ? "republished" : "published", v->volume_id,
			 v->target, key, v->namespace_, v->service_account);
	pthread_mutex_lock(&m->s.lock);
	bool unused = d->ntargets == 0 && !d->removed;
	pthread_mutex_unlock(&m->s.lock);
	if (code != CSI_OK && unused)
		teardown(m, d);
	pthread_mutex_unlock(&d->op_lock);
	mounter_daemon_put(m, d);
	return code;
}

static enum csi_code unpublish(struct mounter *m, const char *volume_id,
			       const char *given, struct buf *msg)
{
	char key[CSI_KEY_LEN + 1];
	struct daemon *d = NULL;
	struct target *t;
	char *target;
	bool last = false;

	if (!volume_id || !*volume_id || !given ||
	    csi_target_check(given, m->cfg->kubelet_dir, msg) != 0)
		return CSI_INVALID_ARGUMENT;
	target = canonical_target(given);
	if (!target)
		return CSI_INTERNAL;
	pthread_mutex_lock(&m->s.lock);
	t = mounter_find_target_locked(m, target);
	if (t && strcmp(t->rec.volume_id, volume_id) != 0) {
		buf_appendf(msg, "target %s holds volume %s, not %s", target,
			    t->rec.volume_id, volume_id);
		pthread_mutex_unlock(&m->s.lock);
		free(target);
		return CSI_NOT_FOUND;
	}
	if (t)
		memcpy(key, t->rec.key, sizeof(key));
	pthread_mutex_unlock(&m->s.lock);
	if (t)
		d = mounter_daemon_get(m, key, NULL);
	if (d)
		pthread_mutex_lock(&d->op_lock);

	/* Whatever spfs mounts are there go, dead ones included (a dead FUSE
	 * mount answers ENOTCONN to stat but detaches fine), then the
	 * directory we created. Nothing recorded: the same, and OK. */
	int n = mount_detach_spfs(target);
	if (n < 0)
		log_warn("mounter: unmounting %s: %s", target, strerror(-n));
	if (rmdir(target) != 0 && errno != ENOENT)
		log_warn("mounter: cannot remove %s: %s", target,
			 strerror(errno));

	pthread_mutex_lock(&m->s.lock);
	t = mounter_find_target_locked(m, target);
	if (t) {
		mounter_target_unlink_locked(m, t);
		if (d)
			last = --d->ntargets == 0;
	}
	pthread_mutex_unlock(&m->s.lock);
	state_remove_target(m->cfg->state_dir, target);
	log_info("mounter: unpublished %s from %s%s", volume_id, target,
		 t ? "" : " (not recorded: cleaned up)");
	if (d) {
		if (last)
			teardown(m, d);
		pthread_mutex_unlock(&d->op_lock);
		mounter_daemon_put(m, d);
	}
	free(target);
	return CSI_OK;
}

static char *status_json(struct mounter *m)
{
	struct json_object *o = json_object_new_object();
	struct json_object *ds = json_object_new_array();
	struct json_object *ts = json_object_new_array();
	char *out = NULL;

	if (!o || !ds || !ts)
		goto out;
	pthread_mutex_lock(&m->s.lock);
	for (struct daemon *d = m->daemons; d; d = d->next) {
		struct json_object *j;
		if (d->removed)
			continue; /* on its way out */
		j = json_object_new_object();
		if (!j)
			break;
		json_object_object_add(j, "key",
				       json_object_new_string(d->key));
		json_object_object_add(j, "source",
				       json_object_new_string(d->spec.source));
		json_object_object_add(
		    j, "client_id", json_object_new_string(d->spec.client_id));
		json_object_object_add(
		    j, "namespace", json_object_new_string(d->spec.namespace_));
		json_object_object_add(
		    j, "service_account",
		    json_object_new_string(d->spec.service_account));
		json_object_object_add(j, "options",
				       json_object_new_string(d->spec.options));
		json_object_object_add(j, "pid", json_object_new_int(d->pid));
		json_object_object_add(j, "targets",
				       json_object_new_int(d->ntargets));
		json_object_object_add(j, "crashes",
				       json_object_new_int((int)d->crashes));
		json_object_array_add(ds, j);
	}
	for (struct target *t = m->targets; t; t = t->next) {
		struct json_object *j = json_object_new_object();
		if (!j)
			break;
		json_object_object_add(
		    j, "volume_id", json_object_new_string(t->rec.volume_id));
		json_object_object_add(j, "target",
				       json_object_new_string(t->rec.target));
		json_object_object_add(j, "key",
				       json_object_new_string(t->rec.key));
		json_object_array_add(ts, j);
	}
	pthread_mutex_unlock(&m->s.lock);
	json_object_object_add(o, "daemons", ds);
	json_object_object_add(o, "targets", ts);
	ds = ts = NULL;
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(ds);
	json_object_put(ts);
	json_object_put(o);
	return out;
}

void *mounter_connection_main(void *arg)
{
	struct worker *w = arg;
	struct mounter *m = w->m;
	struct mounter_request req;
	struct buf in, out, msg;
	enum csi_code code = CSI_INVALID_ARGUMENT;
	char *status = NULL;

	mounter_request_init(&req);
	buf_init_secret(&in, WIRE_MAX);
	buf_init(&out, WIRE_MAX);
	buf_init(&msg, 4096);
	if (wire_recv(w->fd, &in) != 0)
		goto out;
	if (wire_request_decode(in.data, in.len, &req, &msg) == 0) {
		switch (req.op) {
		case MOUNTER_PING:
			code = CSI_OK;
			buf_appendf(&msg, "ok");
			break;
		case MOUNTER_PUBLISH:
			code = publish(m, &req.vol, &msg);
			break;
		case MOUNTER_UNPUBLISH:
			code = unpublish(m, req.vol.volume_id, req.vol.target,
					 &msg);
			break;
		case MOUNTER_STATUS:
			status = status_json(m);
			code = status ? CSI_OK : CSI_INTERNAL;
			break;
		}
	}
	if (code != CSI_OK)
		log_warn("mounter: %s: %s", csi_code_name(code), buf_str(&msg));
	if (wire_reply_encode(code, buf_str(&msg), status, &out) == 0)
		wire_send(w->fd, out.data, out.len);
out:
	close(w->fd);
	free(status);
	mounter_request_release(&req);
	buf_release(&in);
	buf_release(&out);
	buf_release(&msg);
	mounter_worker_done(m);
	free(w);
	return NULL;
}

void *mounter_restart_main(void *arg)
{
	struct worker *w = arg;
	struct mounter *m = w->m;
	struct daemon *d = w->d;
	struct buf msg;

	buf_init(&msg, 4096);
	pthread_mutex_lock(&d->op_lock);
	pthread_mutex_lock(&m->s.lock);
	bool skip =
	    d->removed || d->stopping || d->ntargets == 0 || m->stopping;
	pthread_mutex_unlock(&m->s.lock);
	if (!skip && !daemon_running(d, &m->s, NULL)) {
		if (daemon_start(d, &m->s, m->cfg, &msg) == CSI_OK) {
			state_write_pid(m->cfg->state_dir, d->key, d->pid);
			rebind_all(m, d);
			log_info("mounter: %s: spfs restarted, its targets "
				 "bound again",
				 d->key);
		} else {
			log_warn("mounter: %s: restart failed: %s", d->key,
				 buf_str(&msg));
			pthread_mutex_lock(&m->s.lock);
			if (!d->stopping && d->ntargets > 0)
				mounter_schedule_restart_locked(m, d);
			pthread_mutex_unlock(&m->s.lock);
			mounter_wake(m);
		}
	}
	pthread_mutex_unlock(&d->op_lock);
	mounter_daemon_put(m, d);
	mounter_worker_done(m);
	buf_release(&msg);
	free(w);
	return NULL;
}
