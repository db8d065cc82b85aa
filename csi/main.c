/* SPDX-License-Identifier: MIT */
/*
 * spfs-csi: wiring only. `spfs-csi node` serves CSI to the kubelet (gRPC,
 * csi/grpc_server.cc); `spfs-csi mounter` owns the spfs daemons
 * (csi/mounter.c); `spfs-csi status` asks a mounter what it serves. The
 * CSI specification's CSI_ENDPOINT and the Kubernetes downward API's
 * NODE_NAME configure the plugin without flags.
 */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "csi/grpc_server.h"
#include "csi/mounter.h"
#include "csi/wire.h"

#define DEFAULT_DRIVER	     "spfs.csi.spfs-project.github.io"
#define DEFAULT_MOUNTER_SOCK "/run/spfs-csi/mounter.sock"
#define DEFAULT_STATE_DIR    "/var/lib/spfs-csi"
#define DEFAULT_KUBELET_DIR  "/var/lib/kubelet"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: spfs-csi [node] [OPTIONS]     the CSI node plugin "
		"(gRPC)\n"
		"       spfs-csi mounter [OPTIONS] [-o SPFS_OPTIONS]\n"
		"       spfs-csi status [--mounter-socket PATH]\n"
		"       spfs-csi --help | --version\n"
		"\n"
		"spfs-csi mounts SharePoint libraries into Kubernetes pods "
		"through spfs,\n"
		"each pod reading with its own workload identity. The plugin "
		"answers the\n"
		"kubelet; the mounter, a separate process, runs the spfs "
		"daemons, so\n"
		"restarting the plugin breaks no mount.\n"
		"\n"
		"node options:\n"
		"  --endpoint URL         CSI socket, unix:///PATH.sock "
		"(default $CSI_ENDPOINT)\n"
		"  --node-id ID           this node's name (default "
		"$NODE_NAME)\n"
		"  --driver-name NAME     the CSIDriver's name (default "
		"%s)\n"
		"  --tenant-id ID         tenant of volumes without tenantID "
		"(default\n"
		"                         $AZURE_TENANT_ID)\n"
		"mounter options:\n"
		"  --state-dir DIR        tokens, caches and records (default "
		"%s)\n"
		"  --spfs PATH            the spfs program (default: beside "
		"spfs-csi)\n"
		"  --restart-delay S      wait before restarting a crashed "
		"spfs (default\n"
		"                         0.5; doubling while it keeps "
		"crashing)\n"
		"  --mount-timeout S      how long spfs may take to mount "
		"(default 60)\n"
		"  -o OPTIONS             spfs options for every daemon (e.g. "
		"cache_size=2G)\n"
		"both:\n"
		"  --mounter-socket PATH  the mounter's socket (default %s)\n"
		"  --kubelet-dir DIR      targets must be below it (default "
		"%s)\n"
		"  --log-level LEVEL      error, warn, info (default), debug\n"
		"  --log-format FORMAT    text (default) or json\n"
		"\n"
		"Volume attributes: source (the library's URL), clientID, "
		"tenantID,\n"
		"options (spfs options a pod may set). See man spfs-csi.\n"
		"Report bugs at <%s>.\n",
		DEFAULT_DRIVER, DEFAULT_STATE_DIR, DEFAULT_MOUNTER_SOCK,
		DEFAULT_KUBELET_DIR, PACKAGE_BUGREPORT);
}

struct args {
	const char *mode;
	const char *endpoint, *node_id, *driver, *tenant;
	const char *mounter_socket, *kubelet_dir, *state_dir, *spfs;
	const char *spfs_options;
	double restart_delay, mount_timeout;
};

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return v && *v ? v : fallback;
}

static int parse_seconds(const char *flag, const char *v, double *out)
{
	char *end = NULL;
	double d = v ? strtod(v, &end) : -1;

	if (!v || !*v || *end || d < 0 || d > 86400) {
		fprintf(stderr, "spfs-csi: %s %s: expected seconds\n", flag,
			v ? v : "");
		return -EINVAL;
	}
	*out = d;
	return 0;
}

/* 0, 1 for --help/--version (done), or -EINVAL (said why). */
static int parse(int argc, char **argv, struct args *a)
{
	static const struct {
		const char *flag;
		size_t off;
	} strings[] = {
	    {"--endpoint", offsetof(struct args, endpoint)},
	    {"--node-id", offsetof(struct args, node_id)},
	    {"--driver-name", offsetof(struct args, driver)},
	    {"--tenant-id", offsetof(struct args, tenant)},
	    {"--mounter-socket", offsetof(struct args, mounter_socket)},
	    {"--kubelet-dir", offsetof(struct args, kubelet_dir)},
	    {"--state-dir", offsetof(struct args, state_dir)},
	    {"--spfs", offsetof(struct args, spfs)},
	    {"-o", offsetof(struct args, spfs_options)},
	};
	int i = 1;

	if (argc > 1 && argv[1][0] != '-') {
		a->mode = argv[1];
		i = 2;
	}
	for (; i < argc; i++) {
		const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char flag[64];
		bool known = false, joined = false;
		/* --flag=value, as Kubernetes manifests usually write it. */
		const char *eq =
		    strncmp(f, "--", 2) == 0 ? strchr(f, '=') : NULL;
		if (eq && (size_t)(eq - f) < sizeof(flag)) {
			memcpy(flag, f, (size_t)(eq - f));
			flag[eq - f] = '\0';
			f = flag;
			v = eq + 1;
			joined = true;
		}
		if (strcmp(f, "-h") == 0 || strcmp(f, "--help") == 0) {
			usage(stdout);
			return 1;
		}
		if (strcmp(f, "-V") == 0 || strcmp(f, "--version") == 0) {
			printf("spfs-csi %s\n", PACKAGE_VERSION);
			return 1;
		}
		for (size_t k = 0; k < sizeof(strings) / sizeof(strings[0]);
		     k++) {
			if (strcmp(f, strings[k].flag) != 0)
				continue;
			if (!v) {
				fprintf(stderr, "spfs-csi: %s needs a value\n",
					f);
				return -EINVAL;
			}
			*(const char **)((char *)a + strings[k].off) = v;
			known = true;
		}
		if (!known && strcmp(f, "--restart-delay") == 0) {
			if (parse_seconds(f, v, &a->restart_delay))
				return -EINVAL;
			known = true;
		} else if (!known && strcmp(f, "--mount-timeout") == 0) {
			if (parse_seconds(f, v, &a->mount_timeout) ||
			    a->mount_timeout < 1)
				return -EINVAL;
			known = true;
		} else if (!known && strcmp(f, "--log-level") == 0) {
			enum log_level l;
			if (!v || log_level_parse(v, &l)) {
				fprintf(stderr, "spfs-csi: --log-level: "
						"error, warn, info or debug\n");
				return -EINVAL;
			}
			log_set_level(l);
			known = true;
		} else if (!known && strcmp(f, "--log-format") == 0) {
			enum log_format fmt;
			if (!v || log_format_parse(v, &fmt)) {
				fprintf(stderr, "spfs-csi: --log-format: text "
						"or json\n");
				return -EINVAL;
			}
			log_set_format(fmt);
			known = true;
		}
		if (!known) {
			fprintf(stderr,
				"spfs-csi: unknown argument '%s' (see "
				"spfs-csi --help)\n",
				f);
			return -EINVAL;
		}
		if (!joined)
			i++; /* every flag takes a value */
	}
	return 0;
}

/* spfs beside this program, else /usr/bin/spfs. */
static const char *default_spfs(char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		snprintf(out, size, "%s/spfs", dirname(self));
		if (access(out, X_OK) == 0)
			return out;
	}
	return "/usr/bin/spfs";
}

static int run_node(const struct args *a)
{
	struct csi_plugin_config cfg = {
	    .endpoint = a->endpoint ? a->endpoint : getenv("CSI_ENDPOINT"),
	    .driver_name = a->driver,
	    .version = PACKAGE_VERSION,
	    .node_id = a->node_id ? a->node_id : getenv("NODE_NAME"),
	    .mounter_socket = a->mounter_socket,
	    .policy = {.kubelet_dir = a->kubelet_dir,
		       .default_tenant_id =
			   a->tenant ? a->tenant : getenv("AZURE_TENANT_ID")},
	};
	sigset_t stop;

	if (!cfg.endpoint || !*cfg.endpoint) {
		fprintf(stderr, "spfs-csi: no endpoint: set CSI_ENDPOINT or "
				"--endpoint unix:///PATH.sock\n");
		return 2;
	}
	if (!cfg.node_id || !*cfg.node_id) {
		fprintf(stderr, "spfs-csi: no node id: set NODE_NAME (the "
				"downward API's spec.nodeName) or --node-id\n");
		return 2;
	}
	/* Blocked before gRPC starts its threads; the server sigwait()s. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	return csi_grpc_serve(&cfg);
}

static int run_mounter(const struct args *a)
{
	char spfs[PATH_MAX];
	struct buf opts;
	const char *authority = getenv("AZURE_AUTHORITY_HOST");
	int status;

	/* A sovereign cloud's authority, as the workload identity webhook
	 * sets it, unless -o names one. */
	buf_init(&opts, 8192);
	buf_append_str(&opts, a->spfs_options ? a->spfs_options : "");
	if (authority && *authority &&
	    !strstr(buf_str(&opts), "authority_host="))
		buf_appendf(&opts, "%sauthority_host=%s", opts.len ? "," : "",
			    authority);
	struct mounter_config cfg = {
	    .socket_path = a->mounter_socket,
	    .state_dir = a->state_dir,
	    .kubelet_dir = a->kubelet_dir,
	    .spfs_path = a->spfs ? a->spfs : default_spfs(spfs, sizeof(spfs)),
	    .spfs_options = buf_str(&opts),
	    .restart_delay = a->restart_delay,
	    .mount_timeout = a->mount_timeout,
	};
	status = mounter_run(&cfg);
	buf_release(&opts);
	return status;
}

static int run_status(const struct args *a)
{
	struct mounter_request req;
	struct mounter_reply reply;
	int err, status = 1;

	mounter_request_init(&req);
	mounter_reply_init(&reply);
	req.op = MOUNTER_STATUS;
	err = wire_call(a->mounter_socket, &req, 10000, &reply);
	if (err) {
		fprintf(stderr, "spfs-csi: no mounter on %s: %s\n",
			a->mounter_socket, strerror(-err));
	} else if (reply.code != CSI_OK) {
		fprintf(stderr, "spfs-csi: %s: %s\n", csi_code_name(reply.code),
			reply.message);
	} else {
		printf("%s\n", reply.status ? reply.status : "{}");
		status = 0;
	}
	mounter_reply_release(&reply);
	mounter_request_release(&req);
	return status;
}

int main(int argc, char **argv)
{
	struct args a = {
	    .mode = "node",
	    .driver = DEFAULT_DRIVER,
	    .mounter_socket = DEFAULT_MOUNTER_SOCK,
	    .kubelet_dir = DEFAULT_KUBELET_DIR,
	    .state_dir = DEFAULT_STATE_DIR,
	    .restart_delay = 0.5,
	    .mount_timeout = 60,
	};
	int err;

	a.mounter_socket = env_or("SPFS_CSI_MOUNTER_SOCKET", a.mounter_socket);
	err = parse(argc, argv, &a);
	if (err)
		return err > 0 ? 0 : 2;
	if (strcmp(a.mode, "node") == 0)
		return run_node(&a);
	if (strcmp(a.mode, "mounter") == 0)
		return run_mounter(&a);
	if (strcmp(a.mode, "status") == 0)
		return run_status(&a);
	fprintf(stderr, "spfs-csi: unknown mode '%s' (node, mounter, status)\n",
		a.mode);
	return 2;
}
