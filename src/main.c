/* SPDX-License-Identifier: MIT */
/*
 * spfs entry point: wiring only. Parses the command line, resolves the
 * credential from the environment, builds the layers bottom-up (http, auth,
 * graph, metadata store, fs, FUSE), runs, and tears down top-down. First of
 * all it makes the process undumpable: it holds tokens.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "auth/auth.h"
#include "base/buf.h"
#include "base/log.h"
#include "cache/content.h"
#include "cache/meta.h"
#include "cachedir.h"
#include "check.h"
#include "fs/fs.h"
#include "fuse/adapter.h"
#include "graph/graph.h"
#include "graph/source.h"
#include "http/http.h"
#include "metrics/httpd.h"
#include "options.h"

static const char *real_getenv(const char *name)
{
	return getenv(name);
}

/* The cache directory's path: -o cache_dir, else /var/cache/spfs for root,
 * else $XDG_CACHE_HOME/spfs or ~/.cache/spfs. malloc'd. */
static char *cache_dir_for(const struct options *o)
{
	struct buf b;
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	buf_init(&b, 4096);
	if (o->cache_dir)
		buf_append_str(&b, o->cache_dir);
	else if (geteuid() == 0)
		buf_append_str(&b, "/var/cache/spfs");
	else if (xdg && *xdg)
		buf_appendf(&b, "%s/spfs", xdg);
	else
		buf_appendf(&b, "%s/.cache/spfs", home ? home : "/tmp");
	return buf_detach(&b, NULL);
}

/* A short stable hex name for s (file names for libraries and sources). */
static void hex_name(const char *s, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The last resolution of a SOURCE is remembered, so that a mount whose Graph
 * is down at start still mounts from its cache. The file is opened under the
 * checked cache directory, never through a link. */
static int remembered(int dirfd, const char *source, int save, char **drive_id,
		      char **root_id)
{
	char name[48], a[1024], b[1024];
	FILE *f;
	int fd;

	hex_name(source, name + 7);
	memcpy(name, "source-", 7);
	if (save) {
		fd = cachedir_openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC);
		f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (!f) {
			if (fd >= 0)
				close(fd);
			return fd < 0 ? fd : -errno;
		}
		fprintf(f, "%s\n%s\n", *drive_id, *root_id);
		return fclose(f) == 0 ? 0 : -EIO;
	}
	fd = cachedir_openat(dirfd, name, O_RDONLY);
	f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return -ENOENT;
	}
	int ok = fgets(a, sizeof(a), f) && fgets(b, sizeof(b), f);
	fclose(f);
	if (!ok)
		return -EINVAL;
	a[strcspn(a, "\n")] = '\0';
	b[strcspn(b, "\n")] = '\0';
	*drive_id = strdup(a);
	*root_id = strdup(b);
	return *drive_id && *root_id ? 0 : -ENOMEM;
}

/* /metrics for Prometheus; /mounted, /ready and /healthz for the startup,
 * readiness and liveness probes (answered from atomics: never blocking). */
static int serve_metrics(void *ctx, const char *path, struct buf *body,
			 const char **type)
{
	struct fs *fs = ctx;

	if (strcmp(path, "/metrics") == 0) {
		*type = "text/plain; version=0.0.4; charset=utf-8";
		return fs_metrics_text(fs, body) ? 500 : 200;
	}
	if (strcmp(path, "/mounted") == 0) {
		bool mounted = fs_mounted(fs);
		buf_append_str(body, mounted ? "mounted\n" : "not mounted\n");
		return mounted ? 200 : 503;
	}
	if (strcmp(path, "/ready") == 0) {
		bool ready = fs_ready(fs);
		buf_append_str(body, ready
					 ? "ready\n"
					 : "not ready: not mounted, or the "
					   "library's root cannot be listed\n");
		return ready ? 200 : 503;
	}
	if (strcmp(path, "/healthz") == 0) {
		double stuck;
		if (fs_healthy(fs, &stuck)) {
			buf_append_str(body, "ok\n");
			return 200;
		}
		buf_appendf(body,
			    "wedged: a metadata operation has not returned "
			    "for %.0f s\n",
			    stuck);
		return 503;
	}
	buf_append_str(body, "spfs: /metrics, /mounted, /ready, /healthz\n");
	return 404;
}

static void metrics_started(void *ctx)
{
	struct httpd *h = ctx;
	int err = h ? httpd_serve(h) : 0;

	if (err)
		log_error("metrics: cannot start: %s", strerror(-err));
}

/* The mount is going away: end every network wait (signal-safe). */
static void abort_network(void *ctx)
{
	http_abort(ctx);
}

static int run_mount(struct options *o)
{
	struct http_config hc = {.cafile = o->cafile,
				 .allow_http = o->auth.allow_http};
	struct graph_config gc = {.base_url = o->auth.graph_url,
				  .give_up_after = o->read_timeout};
	struct http *http = NULL;
	struct auth *auth = NULL;
	struct graph *g = NULL;
	struct meta *m = NULL;
	struct content *store = NULL;
	struct fs *fs = NULL;
	struct httpd *metrics = NULL;
	struct source src;
	struct source_resolved res;
	struct buf msg;
	char *dir = NULL, *drive_id = NULL, *root_id = NULL;
	int have_src = 0, dirfd = -1, err;

	buf_init(&msg, 8192);
	memset(&res, 0, sizeof(res));
	if (!o->mountpoint) {
		fprintf(stderr, "spfs: no MOUNTPOINT (usage: spfs [options] "
				"SOURCE MOUNTPOINT)\n");
		return 2;
	}
	err = source_parse(o->source, &src, &msg);
	if (err) {
		fprintf(stderr, "spfs: %s\n", buf_str(&msg));
		buf_release(&msg);
		return 2;
	}
	have_src = 1;
	dir = cache_dir_for(o);
	dirfd = dir ? cachedir_open(dir, &msg) : -ENOMEM;
	if (dirfd < 0) {
		log_error("%s", msg.len ? buf_str(&msg) : strerror(-dirfd));
		err = dirfd;
		goto out;
	}
	buf_reset(&msg);
	http = http_new(&hc, &err);
	auth = http ? auth_new(&o->auth, http, &err) : NULL;
	g = auth ? graph_new(http, auth, &gc, &err) : NULL;
	if (!g) {
		err = err ? err : -EIO;
		goto out;
	}

	err = source_resolve(g, &src, &res, &msg, NULL);
	if (!err) {
		drive_id = strdup(res.drive_id);
		root_id = strdup(res.root_id);
		remembered(dirfd, o->source, 1, &drive_id, &root_id);
		log_info("%s: library %s (%s)%s%s", o->source,
			 res.drive_name ? res.drive_name : res.drive_id,
			 res.drive_id, res.root_path[0] ? ", folder " : "",
			 res.root_path);
	} else if (remembered(dirfd, o->source, 0, &drive_id, &root_id) == 0) {
		log_warn(
		    "%s; mounting from the cache of the last successful mount",
		    buf_str(&msg));
		err = 0;
	} else {
		log_error("%s", buf_str(&msg));
		goto out;
	}

	char name[33], path[4096];
	hex_name(drive_id, name);
	snprintf(path, sizeof(path), "%s/library-%s.meta.db", dir, name);
	m = meta_open(path, drive_id, &err);
	if (!m)
		goto out;
	if (!o->cache_off) {
		uint64_t cap = o->cache_size;
		struct statvfs sv;
		if (!cap) {
			/* 10% of the cache's filesystem, at least 1 GiB, but
			 * never more than half of it: the metadata needs room
			 * too on a small volume. */
			cap = 1ull << 30;
			if (statvfs(dir, &sv) == 0) {
				uint64_t fs_bytes =
				    (uint64_t)sv.f_blocks * sv.f_frsize;
				if (fs_bytes / 10 > cap)
					cap = fs_bytes / 10;
				if (fs_bytes && cap > fs_bytes / 2)
					cap = fs_bytes / 2;
			}
		}
		/* The cap bounds the directory's disk use for this
		 * library: the metadata store's files count against it. */
		char meta_wal[4200], meta_shm[4200];
		snprintf(meta_wal, sizeof(meta_wal), "%s-wal", path);
		snprintf(meta_shm, sizeof(meta_shm), "%s-shm", path);
		char meta_db[4096];
		snprintf(meta_db, sizeof(meta_db), "%s", path);
		const char *neighbours[] = {meta_db, meta_wal, meta_shm, NULL};
		snprintf(path, sizeof(path), "%s/library-%s.content.db", dir,
			 name);
		struct content_config cc = {.path = path,
					    .max_bytes = cap,
					    .chunk_size = o->chunk_size,
					    .neighbours = neighbours};
		store = content_open(&cc, &err);
		if (!store) {
			log_error("content cache %s: %s (-o cache=off reads "
				  "without it)",
				  path, strerror(-err));
			goto out;
		}
		o->cache_size = cap;
	}
	struct fs_config fc = {
	    .uid = o->uid >= 0 ? (uid_t)o->uid : getuid(),
	    .gid = o->gid >= 0 ? (gid_t)o->gid : getgid(),
	    .umask = o->umask >= 0 ? (mode_t)o->umask : 022,
	    .poll_interval = o->poll_interval,
	    .chunk_size = o->chunk_size,
	    .readahead = o->readahead,
	    .small_file = o->small_file,
	    .read_timeout = o->read_timeout,
	    .cache_size = o->cache_size,
	    .liveness_timeout = o->liveness_timeout,
	    .sheets = o->sheets,
	    .sheets_tmp_dir = dir,
	};
	fs = fs_new(g, m, store, drive_id, root_id, &fc, &err);
	if (!fs) {
		log_error("the mounted folder could not be read: %s",
			  strerror(-err));
		goto out;
	}
	if (o->metrics) {
		err = httpd_open(o->metrics, serve_metrics, fs, &metrics);
		if (err) {
			log_error("-o metrics=%s: %s", o->metrics,
				  err == -EINVAL ? "expected HOST:PORT with "
						   "an IP address"
						 : strerror(-err));
			goto out;
		}
		log_info("metrics on http://%s/metrics (port %d)", o->metrics,
			 httpd_port(metrics));
	}
	double t = o->poll_interval > 0 ? o->poll_interval : 30;
	struct fuse_adapter_config ac = {
	    .mountpoint = o->mountpoint,
	    .fsname = o->source,
	    .foreground = o->foreground,
	    .debug = o->debug,
	    .allow_other = o->allow_other,
	    .default_permissions = o->default_permissions,
	    .attr_timeout = o->attr_timeout >= 0 ? o->attr_timeout : t,
	    .entry_timeout = o->entry_timeout >= 0 ? o->entry_timeout : t,
	    .started = metrics_started,
	    .hook_ctx = metrics,
	    .abort = abort_network,
	    .abort_ctx = http,
	};
	err = fuse_adapter_run(fs, &ac);
out:
	httpd_stop(metrics);
	fs_free(fs);
	content_close(store);
	meta_close(m);
	graph_free(g);
	auth_free(auth);
	http_free(http);
	if (have_src)
		source_release(&src);
	source_resolved_release(&res);
	free(drive_id);
	free(root_id);
	free(dir);
	if (dirfd >= 0)
		close(dirfd);
	buf_release(&msg);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct options o;
	struct buf msg;
	int status = 2;

	/* Tokens, assertions and secrets live in this process's memory: no
	 * core dump of it, and no ptrace or /proc/PID/mem by its own user.
	 * (Debugging needs root.) */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
	/* Chunk buffers are MiB-sized and short-lived: a fixed mmap threshold
	 * hands them back to the kernel when freed, so RSS follows what is in
	 * use (glibc would otherwise raise the threshold and keep them). */
	mallopt(M_MMAP_THRESHOLD, 512 * 1024);
	options_init(&o);
	buf_init(&msg, 4096);
	if (options_parse(&o, argc, argv, &msg) != 0) {
		fprintf(stderr, "spfs: %s\n", buf_str(&msg));
		goto out;
	}
	log_set_level(o.log_level);
	log_set_format(o.log_format);
	if (o.log_file) {
		/* Every line from now on, foreground or not; kept open for
		 * the process's life (the log sink borrows it). */
		int fd = open(o.log_file,
			      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			fprintf(stderr, "spfs: -o log_file=%s: %s\n",
				o.log_file, strerror(errno));
			goto out;
		}
		log_set_fd(fd);
	}
	if (o.help) {
		options_usage(stdout);
		status = 0;
		goto out;
	}
	if (o.version) {
		printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
		status = 0;
		goto out;
	}
	if (!o.check && !o.source) {
		fprintf(stderr, "spfs: no SOURCE (usage: spfs [options] SOURCE "
				"MOUNTPOINT; see spfs --help)\n");
		goto out;
	}
	if (auth_config_resolve(&o.auth, real_getenv, &msg) != 0) {
		fprintf(stderr, "spfs: %s\n", buf_str(&msg));
		status = 1;
		goto out;
	}
	log_info("credential: %s (%s)", auth_kind_description(o.auth.kind),
		 o.auth.why);
	status = o.check ? check_run(&o, stdout) : run_mount(&o);
out:
	buf_release(&msg);
	options_release(&o);
	return status;
}
