/* SPDX-License-Identifier: MIT */
/*
 * The mounter's files (layout in state.h). Records are small JSON objects
 * (json-c); the only secret, the token, lives in its own 0600 file and
 * never in a record. Removal walks with nftw(FTW_PHYS | FTW_MOUNT |
 * FTW_DEPTH): it never follows a symlink or enters a mount.
 */
#include "config.h"

#include "csi/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

void state_target_release(struct state_target *t)
{
	free(t->volume_id);
	free(t->target);
	memset(t, 0, sizeof(*t));
}

static int mkdir_0700(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -errno;
	/* An existing directory keeps nobody else's permissions. */
	return chmod(path, 0700) == 0 ? 0 : -errno;
}

static int join(struct buf *out, const char *a, const char *b, const char *c,
		const char *d)
{
	buf_reset(out);
	int err = buf_appendf(out, "%s/%s%s%s%s%s", a, b, c ? "/" : "",
			      c ? c : "", d ? "/" : "", d ? d : "");
	return err ? -ENAMETOOLONG : 0;
}

int state_init(const char *dir)
{
	struct buf p;
	int err;

	buf_init(&p, PATH_MAX);
	err = mkdir_0700(dir);
	err = err ? err : join(&p, dir, "daemons", NULL, NULL);
	err = err ? err : mkdir_0700(p.data);
	err = err ? err : join(&p, dir, "targets", NULL, NULL);
	err = err ? err : mkdir_0700(p.data);
	buf_release(&p);
	return err;
}

int state_daemon_path(struct buf *out, const char *dir, const char *key,
		      const char *leaf)
{
	return join(out, dir, "daemons", key, leaf);
}

int state_write_atomic(const char *path, const char *data, size_t len,
		       mode_t mode)
{
	struct buf tmp;
	int fd = -1, err = 0;

	buf_init(&tmp, PATH_MAX);
	if (buf_appendf(&tmp, "%s.tmp-%d", path, (int)getpid()) != 0) {
		err = -ENAMETOOLONG;
		goto out;
	}
	fd = open(tmp.data,
		  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	if (fchmod(fd, mode) != 0) {
		err = -errno;
		goto out;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		err = -errno;
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp.data, path) != 0)
		err = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (err)
		unlink(tmp.data);
	buf_release(&tmp);
	return err;
}

static int write_json(const char *path, struct json_object *o)
{
	size_t n = 0;
	const char *s =
	    json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
	int err = s ? state_write_atomic(path, s, n, 0600) : -ENOMEM;

	json_object_put(o);
	return err;
}

static void put_str(struct json_object *o, const char *key, const char *v)
{
	if (v)
		json_object_object_add(o, key, json_object_new_string(v));
}

int state_save_daemon(const char *dir, const char *key,
		      const struct csi_volume *v)
{
	struct json_object *o;
	struct buf p;
	int err;

	buf_init(&p, PATH_MAX);
	err = state_daemon_path(&p, dir, key, NULL);
	err = err ? err : mkdir_0700(p.data);
	err = err ? err : state_daemon_path(&p, dir, key, "cache");
	err = err ? err : mkdir_0700(p.data);
	err = err ? err : state_daemon_path(&p, dir, key, "mnt");
	/* The bare mountpoint is unreadable: "not mounted" reads as EACCES,
	 * never as an empty library. */
	if (!err && mkdir(p.data, 0) != 0 && errno != EEXIST)
		err = -errno;
	err = err ? err : state_daemon_path(&p, dir, key, "volume.json");
	if (err)
		goto out;
	o = json_object_new_object();
	if (!o) {
		err = -ENOMEM;
		goto out;
	}
	put_str(o, "source", v->source);
	put_str(o, "client_id", v->client_id);
	put_str(o, "tenant_id", v->tenant_id);
	put_str(o, "namespace", v->namespace_);
	put_str(o, "service_account", v->service_account);
	put_str(o, "options", v->options ? v->options : "");
	err = write_json(p.data, o);
out:
	buf_release(&p);
	return err;
}

int state_write_token(const char *dir, const char *key,
		      const struct sa_token *t)
{
	struct buf p;
	int err;

	if (!t->token)
		return -EINVAL;
	buf_init(&p, PATH_MAX);
	err = state_daemon_path(&p, dir, key, "token");
	err =
	    err ? err
		: state_write_atomic(p.data, t->token, strlen(t->token), 0600);
	buf_release(&p);
	return err;
}

int state_write_pid(const char *dir, const char *key, pid_t pid)
{
	char text[32];
	struct buf p;
	int err;

	buf_init(&p, PATH_MAX);
	snprintf(text, sizeof(text), "%d\n", (int)pid);
	err = state_daemon_path(&p, dir, key, "pid");
	err = err ? err : state_write_atomic(p.data, text, strlen(text), 0600);
	buf_release(&p);
	return err;
}

pid_t state_read_pid(const char *dir, const char *key)
{
	struct buf p;
	FILE *f;
	int pid = 0;

	buf_init(&p, PATH_MAX);
	if (state_daemon_path(&p, dir, key, "pid") == 0 &&
	    (f = fopen(p.data, "re"))) {
		if (fscanf(f, "%d", &pid) != 1 || pid < 2)
			pid = 0;
		fclose(f);
	}
	buf_release(&p);
	return (pid_t)pid;
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

int state_remove_daemon(const char *dir, const char *key)
{
	struct buf p;
	int err;

	buf_init(&p, PATH_MAX);
	err = state_daemon_path(&p, dir, key, NULL);
	if (!err &&
	    nftw(p.data, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) !=
		0 &&
	    errno != ENOENT)
		err = -errno;
	if (!err && access(p.data, F_OK) == 0)
		err = -EBUSY; /* something was mounted below it */
	buf_release(&p);
	return err;
}

static void target_file(struct buf *out, const char *dir, const char *target)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char hex[33];

	EVP_Digest(target, strlen(target), md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	buf_reset(out);
	buf_appendf(out, "%s/targets/%s.json", dir, hex);
}

int state_save_target(const char *dir, const struct state_target *t)
{
	struct json_object *o = json_object_new_object();
	struct buf p;
	int err;

	if (!o)
		return -ENOMEM;
	buf_init(&p, PATH_MAX);
	target_file(&p, dir, t->target);
	put_str(o, "volume_id", t->volume_id);
	put_str(o, "target", t->target);
	put_str(o, "key", t->key);
	json_object_object_add(o, "readonly",
			       json_object_new_boolean(t->readonly));
	err = write_json(p.data, o);
	buf_release(&p);
	return err;
}

int state_remove_target(const char *dir, const char *target)
{
	struct buf p;
	int err = 0;

	buf_init(&p, PATH_MAX);
	target_file(&p, dir, target);
	if (unlink(p.data) != 0 && errno != ENOENT)
		err = -errno;
	buf_release(&p);
	return err;
}

/* A string member, copied, or NULL. */
static char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return strdup(json_object_get_string(v));
}

static struct json_object *read_json(const char *path)
{
	struct json_object *o = json_object_from_file(path);

	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static bool is_key(const char *name)
{
	if (strlen(name) != CSI_KEY_LEN)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static void load_daemon(const char *dir, const char *key, state_daemon_fn fn,
			void *ctx)
{
	struct csi_volume v;
	struct json_object *o;
	struct buf p;
	FILE *f;

	csi_volume_init(&v);
	buf_init(&p, PATH_MAX);
	if (state_daemon_path(&p, dir, key, "volume.json") != 0 ||
	    !(o = read_json(p.data))) {
		log_warn("mounter: %s/daemons/%s has no readable volume.json; "
			 "ignored",
			 dir, key);
		goto out;
	}
	v.source = get_str(o, "source");
	v.client_id = get_str(o, "client_id");
	v.tenant_id = get_str(o, "tenant_id");
	v.namespace_ = get_str(o, "namespace");
	v.service_account = get_str(o, "service_account");
	v.options = get_str(o, "options");
	json_object_put(o);
	if (state_daemon_path(&p, dir, key, "token") == 0 &&
	    (f = fopen(p.data, "re"))) {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n = getline(&line, &cap, f);
		if (n > 0) {
			line[strcspn(line, "\n")] = '\0';
			v.token.token = line;
		} else {
			free(line);
		}
		fclose(f);
	}
	fn(ctx, key, &v);
out:
	csi_volume_release(&v);
	buf_release(&p);
}

int state_load(const char *dir, state_daemon_fn on_daemon,
	       state_target_fn on_target, void *ctx)
{
	struct buf p;
	struct dirent *e;
	DIR *d;

	buf_init(&p, PATH_MAX);
	join(&p, dir, "daemons", NULL, NULL);
	d = opendir(p.data);
	if (!d) {
		int err = -errno;
		buf_release(&p);
		return err;
	}
	while ((e = readdir(d)))
		if (is_key(e->d_name))
			load_daemon(dir, e->d_name, on_daemon, ctx);
	closedir(d);

	join(&p, dir, "targets", NULL, NULL);
	d = opendir(p.data);
	while (d && (e = readdir(d))) {
		struct state_target t = {0};
		struct json_object *o, *ro;
		size_t n = strlen(e->d_name);
		char *key;
		if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
			continue;
		join(&p, dir, "targets", e->d_name, NULL);
		o = read_json(p.data);
		if (!o) {
			log_warn("mounter: %s is unreadable; ignored", p.data);
			continue;
		}
		t.volume_id = get_str(o, "volume_id");
		t.target = get_str(o, "target");
		key = get_str(o, "key");
		t.readonly = json_object_object_get_ex(o, "readonly", &ro) &&
			     json_object_get_boolean(ro);
		json_object_put(o);
		if (t.volume_id && t.target && key && is_key(key)) {
			memcpy(t.key, key, CSI_KEY_LEN + 1);
			on_target(ctx, &t);
		} else {
			log_warn("mounter: %s is incomplete; ignored", p.data);
		}
		free(key);
		state_target_release(&t);
	}
	if (d)
		closedir(d);
	buf_release(&p);
	return 0;
}
