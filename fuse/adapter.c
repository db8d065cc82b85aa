/* SPDX-License-Identifier: MIT */
/*
 * FUSE low-level adapter. Each op unpacks its arguments, calls fs_*, and
 * replies; reply_err() is the one error path. Inodes are persistent (the
 * store keeps them), so lookup counts need no bookkeeping: forget is a
 * no-op. The filesystem is read-only: every write-type op answers EROFS.
 *
 * Kernel invalidations come from the fs delta thread through the notify
 * callbacks below, never from inside an op.
 */
#define FUSE_USE_VERSION 34
#include "config.h"

#include "fuse/adapter.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "base/log.h"
#include "fs/fs.h"

struct adapter {
	struct fs *fs;
	struct fuse_session *se;
	double entry_timeout, attr_timeout;
};

static struct adapter *adapter_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void reply_err(fuse_req_t req, const char *op, int err)
{
	/* ENOENT is a normal answer; anything else is worth a debug line. */
	if (err != -ENOENT && err != -ENODATA)
		log_debug("%s: %s", op, strerror(-err));
	fuse_reply_err(req, -err);
}

static void to_stat(const struct fs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	st->st_blksize = 4096;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_mtim = a->mtime;
	st->st_atim = a->mtime;
	st->st_ctim = a->ctime;
}

#define MAX_READAHEAD (1u << 20)

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Large reads: fewer round trips (see raise_readahead). */
	conn->max_readahead = MAX_READAHEAD;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct adapter *a = adapter_of(req);
	struct fuse_entry_param e;
	struct fs_attr attr;
	int err = fs_lookup(a->fs, parent, name, &attr);

	memset(&e, 0, sizeof(e));
	if (err == -ENOENT) {
		/* A negative entry: delta invalidates it when the name appears.
		 */
		e.entry_timeout = a->entry_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (err) {
		reply_err(req, "lookup", err);
		return;
	}
	e.ino = attr.ino;
	e.generation = 1;
	e.attr_timeout = a->attr_timeout;
	e.entry_timeout = a->entry_timeout;
	to_stat(&attr, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct adapter *a = adapter_of(req);
	struct fs_attr attr;
	struct stat st;
	int err = fs_getattr(a->fs, ino, &attr);

	(void)fi;
	if (err) {
		reply_err(req, "getattr", err);
		return;
	}
	to_stat(&attr, &st);
	fuse_reply_attr(req, &st, a->attr_timeout);
}

/* A directory handle: the entries as of opendir, so offsets stay stable. */
struct dir_handle {
	struct fs_dirent *entries;
	char **names;
	size_t n, cap;
};

static int dir_collect(void *ctx, const struct fs_dirent *e)
{
	struct dir_handle *d = ctx;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct fs_dirent *pe = realloc(d->entries, cap * sizeof(*pe));
		if (!pe)
			return -ENOMEM;
		d->entries = pe;
		char **pn = realloc(d->names, cap * sizeof(*pn));
		if (!pn)
			return -ENOMEM;
		d->names = pn;
		d->cap = cap;
	}
	d->names[d->n] = strdup(e->name);
	if (!d->names[d->n])
		return -ENOMEM;
	d->entries[d->n] = *e;
	d->entries[d->n].name = d->names[d->n];
	d->n++;
	return 0;
}

static void dir_free(struct dir_handle *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->names[i]);
	free(d->names);
	free(d->entries);
	free(d);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct adapter *a = adapter_of(req);
	struct dir_handle *d = calloc(1, sizeof(*d));
	int err = d ? fs_readdir(a->fs, ino, dir_collect, d) : -ENOMEM;

	if (err) {
		if (d)
			dir_free(d);
		reply_err(req, "opendir", err);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fi->cache_readdir = 0;
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct adapter *a = adapter_of(req);
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;

	if (!buf) {
		reply_err(req, "readdir", -ENOMEM);
		return;
	}
	/* Offsets: 0 ".", 1 "..", 2+i the i-th entry. */
	for (off_t i = off; (size_t)i < d->n + 2; i++) {
		struct stat st;
		const char *name;
		size_t n;

		memset(&st, 0, sizeof(st));
		if (i < 2) {
			name = i == 0 ? "." : "..";
			st.st_ino = i == 0 ? ino : FUSE_ROOT_ID;
			st.st_mode = S_IFDIR;
		} else {
			to_stat(&d->entries[i - 2].attr, &st);
			name = d->entries[i - 2].name;
		}
		if (plus) {
			struct fuse_entry_param e;
			memset(&e, 0, sizeof(e));
			if (i >= 2) {
				e.ino = st.st_ino;
				e.generation = 1;
				e.attr = st;
				e.attr_timeout = a->attr_timeout;
				e.entry_timeout = a->entry_timeout;
			} else {
				e.attr.st_ino = st.st_ino;
				e.attr.st_mode = st.st_mode;
			}
			n = fuse_add_direntry_plus(req, buf + used, size - used,
						   name, &e, i + 1);
		} else {
			n = fuse_add_direntry(req, buf + used, size - used,
					      name, &st, i + 1);
		}
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	dir_free((struct dir_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct adapter *a = adapter_of(req);
	struct fs_file *f = NULL;
	int keep_cache = 0, size_changed = 0;
	int err;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	err = fs_open(a->fs, ino, &f, &keep_cache, &size_changed);
	if (err) {
		reply_err(req, "open", err);
		return;
	}
	if (size_changed) {
		/* Attributes only (offset -1): the kernel asks getattr again
		 * before reading past the size it knew. No page locks are
		 * involved, so this is safe inside open. */
		int rc = fuse_lowlevel_notify_inval_inode(a->se, ino, -1, 0);
		if (rc && rc != -ENOENT)
			log_debug("invalidate attributes: %s", strerror(-rc));
	}
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->keep_cache = keep_cache;
	if (fuse_reply_open(req, fi) != 0)
		fs_release(f); /* the open was interrupted */
}

/* Each FUSE thread keeps its read buffer: a fresh MiB-sized one per read
 * would be an mmap whose every page faults on first touch. */
struct read_buf {
	char *data;
	size_t cap;
};
static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void read_buf_free(void *p)
{
	struct read_buf *rb = p;

	free(rb->data);
	free(rb);
}

static void read_buf_init(void)
{
	pthread_key_create(&read_buf_key, read_buf_free);
}

static char *read_buf_get(size_t size)
{
	pthread_once(&read_buf_once, read_buf_init);
	struct read_buf *rb = pthread_getspecific(read_buf_key);
	if (!rb) {
		rb = calloc(1, sizeof(*rb));
		if (!rb || pthread_setspecific(read_buf_key, rb) != 0) {
			free(rb);
			return NULL;
		}
	}
	if (rb->cap < size) {
		char *p = realloc(rb->data, size);
		if (!p)
			return NULL;
		rb->data = p;
		rb->cap = size;
	}
	return rb->data;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	char *buf;

	(void)ino;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* Straight from the chunk's memory where it can: one copy fewer. */
	struct fs_read_view v;
	ssize_t n = fs_read_view(f, size, (uint64_t)off, &v);
	if (n != -EAGAIN) {
		struct iovec iov[FS_VIEW_MAX];
		for (int i = 0; i < v.n; i++)
			iov[i] = (struct iovec){(void *)v.data[i], v.len[i]};
		if (n < 0)
			reply_err(req, "read", (int)n);
		else if (v.n)
			fuse_reply_iov(req, iov, v.n);
		else
			fuse_reply_buf(req, NULL, 0);
		fs_read_view_release(&v);
		return;
	}
	buf = read_buf_get(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = fs_read(f, buf, size, (uint64_t)off);
	if (n < 0)
		reply_err(req, "read", (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	fs_release((struct fs_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	(void)ino;
	fs_statfs(adapter_of(req)->fs, &st);
	fuse_reply_statfs(req, &st);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct adapter *a = adapter_of(req);
	char *buf = size ? malloc(size) : NULL;
	int n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = fs_getxattr(a->fs, ino, name, buf, size);
	if (n < 0)
		reply_err(req, "getxattr", n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct adapter *a = adapter_of(req);
	char *buf = size ? malloc(size) : NULL;
	int n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = fs_listxattr(a->fs, ino, buf, size);
	if (n < 0)
		reply_err(req, "listxattr", n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	(void)ino;
	fuse_reply_err(req, (mask & W_OK) ? EROFS : 0);
}

/* ---- read-only: every write-type operation
 * ----------------------------------- */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	(void)ino;
	(void)attr;
	(void)to_set;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)rdev;
	fuse_reply_err(req, EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	(void)parent;
	(void)name;
	(void)mode;
	fuse_reply_err(req, EROFS);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent;
	(void)name;
	fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	(void)parent;
	(void)name;
	(void)newparent;
	(void)newname;
	(void)flags;
	fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EROFS);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	(void)buf;
	(void)size;
	(void)off;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	(void)ino;
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino;
	(void)name;
	fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .statfs = op_statfs,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .access = op_access,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_unlink,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .write = op_write,
    .create = op_create,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
};

/* ---- kernel invalidation (from the fs delta thread)
 * ---------------------------- */

static void notify_entry(void *ctx, uint64_t parent, const char *name)
{
	struct adapter *a = ctx;
	int rc =
	    fuse_lowlevel_notify_inval_entry(a->se, parent, name, strlen(name));

	if (rc && rc != -ENOENT)
		log_debug("invalidate entry %s: %s", name, strerror(-rc));
}

static void notify_inode(void *ctx, uint64_t ino)
{
	struct adapter *a = ctx;
	int rc = fuse_lowlevel_notify_inval_inode(a->se, ino, 0, 0);

	if (rc && rc != -ENOENT)
		log_debug("invalidate inode %llu: %s", (unsigned long long)ino,
			  strerror(-rc));
}

/* ---- prompt shutdown
 * ------------------------------------------------------------ */

/* libfuse's own handlers end the loop on these signals; ours run them and
 * then the abort hook, so that a worker stuck in a network wait (which the
 * loop waits for before it returns) gives up at once. Signal state is
 * process-wide, hence these statics; one mount per process. */
static const int exit_signals[] = {SIGTERM, SIGINT, SIGHUP};
static struct sigaction
    fuse_handlers[sizeof(exit_signals) / sizeof(exit_signals[0])];
static const struct fuse_adapter_config *signalled_cfg;

static void on_exit_signal(int sig)
{
	int saved_errno = errno;

	for (size_t i = 0; i < sizeof(exit_signals) / sizeof(exit_signals[0]);
	     i++) {
		if (exit_signals[i] != sig)
			continue;
		if (fuse_handlers[i].sa_handler != SIG_IGN &&
		    fuse_handlers[i].sa_handler != SIG_DFL)
			fuse_handlers[i].sa_handler(sig);
	}
	if (signalled_cfg && signalled_cfg->abort)
		signalled_cfg->abort(signalled_cfg->abort_ctx);
	errno = saved_errno;
}

static int chain_signal_handlers(const struct fuse_adapter_config *cfg)
{
	signalled_cfg = cfg;
	for (size_t i = 0; i < sizeof(exit_signals) / sizeof(exit_signals[0]);
	     i++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_exit_signal;
		sigemptyset(&sa.sa_mask);
		if (sigaction(exit_signals[i], NULL, &fuse_handlers[i]) != 0 ||
		    sigaction(exit_signals[i], &sa, NULL) != 0)
			return -errno;
	}
	return 0;
}

/* Puts libfuse's handlers back, so that fuse_remove_signal_handlers finds
 * its own and restores the defaults. */
static void unchain_signal_handlers(void)
{
	for (size_t i = 0; i < sizeof(exit_signals) / sizeof(exit_signals[0]);
	     i++)
		sigaction(exit_signals[i], &fuse_handlers[i], NULL);
	signalled_cfg = NULL;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static bool mountinfo_path_is(const char *field, const char *path)
{
	for (; *path; path++) {
		unsigned char c = (unsigned char)*path;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
			char esc[5];
			snprintf(esc, sizeof(esc), "\\%03o", c);
			if (strncmp(field, esc, 4) != 0)
				return false;
			field += 4;
		} else if (*field++ != *path) {
			return false;
		}
	}
	return *field == 0;
}

/*
 * The kernel caps a FUSE mount's read-ahead at its backing device's default
 * (128 KiB) whatever max_readahead says, and every read request is then at
 * most that large. As root, raise the mount's own read_ahead_kb (the sysfs
 * knob of its bdi) to max_readahead: 1 MiB requests, an eighth of the
 * round trips (measured in docs/BENCHMARKS.md). Best effort: a read-only
 * /sys only costs speed. real is the mountpoint's resolved path, found
 * before mounting (a stat after would ask this daemon, whose loop is not
 * running yet).
 */
static void raise_readahead(const char *real, unsigned kib)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192], dev[32] = "", path[4096];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char d[32], mp[4096];
		if (sscanf(line, "%*s %*s %31s %*s %4095s", d, mp) == 2 &&
		    mountinfo_path_is(mp, real))
			snprintf(dev, sizeof(dev), "%s", d); /* the last wins */
	}
	fclose(f);
	if (!dev[0])
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	f = fopen(path, "we");
	if (!f || fprintf(f, "%u\n", kib) < 0 || fclose(f) != 0) {
		if (f)
			fclose(f);
		log_debug("read-ahead stays at the kernel's default: %s: %s",
			  path, strerror(errno));
		return;
	}
	log_debug("read-ahead of the mount raised to %u KiB", kib);
}

int fuse_adapter_run(struct fs *fs, const struct fuse_adapter_config *cfg)
{
	struct adapter a = {.fs = fs,
			    .entry_timeout = cfg->entry_timeout,
			    .attr_timeout = cfg->attr_timeout};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char *opts = NULL, *fsname = NULL;
	int err = 0;

	/* fsname/subtype make /proc/mounts say "SOURCE on DIR type fuse.spfs".
	 * SOURCE is the user's text: escaped, so a comma in it ("x,dev,suid")
	 * stays part of the name instead of becoming mount options. nosuid
	 * and nodev are said, not left to defaults. */
	if (asprintf(&fsname, "fsname=%s", cfg->fsname) < 0) {
		fsname = NULL;
		err = -ENOMEM;
		goto out;
	}
	if (fuse_opt_add_opt(&opts, "ro,nosuid,nodev,subtype=spfs") ||
	    fuse_opt_add_opt_escaped(&opts, fsname) ||
	    (cfg->allow_other && fuse_opt_add_opt(&opts, "allow_other")) ||
	    (cfg->default_permissions &&
	     fuse_opt_add_opt(&opts, "default_permissions")) ||
	    fuse_opt_add_arg(&args, "spfs") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts) ||
	    (cfg->debug && fuse_opt_add_arg(&args, "-d"))) {
		err = -ENOMEM;
		goto out;
	}
	a.se = fuse_session_new(&args, &ops, sizeof(ops), &a);
	if (!a.se) {
		log_error("cannot create the FUSE session (options: %s)", opts);
		err = -EINVAL;
		goto out;
	}
	if (fuse_set_signal_handlers(a.se) != 0) {
		err = -EIO;
		goto out_session;
	}
	err = chain_signal_handlers(cfg);
	if (err)
		goto out_signals;
	char *real = realpath(cfg->mountpoint, NULL);
	if (fuse_session_mount(a.se, cfg->mountpoint) != 0) {
		free(real);
		log_error("cannot mount on %s (does it exist, and may this "
			  "user mount there? "
			  "/dev/fuse and fusermount3 are needed)",
			  cfg->mountpoint);
		err = -EIO;
		goto out_signals;
	}
	if (real && geteuid() == 0)
		raise_readahead(real, MAX_READAHEAD >> 10);
	free(real);
	struct fs_notify n = {.inval_entry = notify_entry,
			      .inval_inode = notify_inode,
			      .ctx = &a};
	fs_set_notify(fs, &n);
	log_info("mounted %s on %s", cfg->fsname, cfg->mountpoint);
	/* Daemonizing points stderr at /dev/null: later lines (errors that
	 * come long after mount(8) returned) go to syslog instead. */
	if (!cfg->foreground)
		log_detach();
	if (fuse_daemonize(cfg->foreground) != 0) {
		err = -EIO;
		goto out_unmount;
	}
	/* The delta thread starts after daemonizing (threads do not survive
	 * fork). */
	err = fs_start_sync(fs);
	if (err)
		goto out_unmount;
	if (cfg->started)
		cfg->started(cfg->hook_ctx);

	/* The 3.2-era loop config: available from libfuse 3.10 on. */
	struct fuse_loop_config lc = {.clone_fd = 0, .max_idle_threads = 10};
	err = fuse_session_loop_mt(a.se, &lc);
	if (err > 0)
		err = 0; /* a signal ended the loop */
	/* Unmounted (or signalled): the delta and watchdog threads, and the
	 * read-ahead workers, may be waiting on the network; end that. */
	if (cfg->abort)
		cfg->abort(cfg->abort_ctx);
	if (cfg->stopping)
		cfg->stopping(cfg->hook_ctx);
	fs_stop_sync(fs);
	log_info("unmounting %s", cfg->mountpoint);
out_unmount:
	fuse_session_unmount(a.se);
out_signals:
	unchain_signal_handlers();
	fuse_remove_signal_handlers(a.se);
out_session:
	fuse_session_destroy(a.se);
out:
	fuse_opt_free_args(&args);
	free(opts);
	free(fsname);
	return err;
}
