/* SPDX-License-Identifier: MIT */
/*
 * Test driver for the auth + Graph layers against the emulator: N threads
 * GET one Graph path in a loop for D seconds (or C calls each) and report
 * what reached the caller as one JSON line. Configured exactly like spfs
 * (environment + -o options), so it exercises the real code paths.
 *
 *   authprobe [--threads N] [--seconds D | --calls C] [--pause-ms P]
 *             --path /drives/ID/root [-o spfs options]
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "base/log.h"
#include "graph/graph.h"
#include "http/http.h"
#include "options.h"

struct probe {
	struct graph *graph;
	const char *path;
	double deadline;
	long calls_each;
	long pause_ms;
	atomic_long calls, ok, status_401, other_status, errors;
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker(void *p)
{
	struct probe *pr = p;
	struct http_response resp;

	http_response_init(&resp);
	for (long i = 0;; i++) {
		if (pr->calls_each ? i >= pr->calls_each
				   : now_mono() >= pr->deadline)
			break;
		int err = graph_get(pr->graph, pr->path, &resp);
		atomic_fetch_add(&pr->calls, 1);
		if (err) {
			atomic_fetch_add(&pr->errors, 1);
			fprintf(stderr, "authprobe: error %d: %s\n", err,
				resp.error);
		} else if (resp.status == 200) {
			atomic_fetch_add(&pr->ok, 1);
		} else if (resp.status == 401) {
			atomic_fetch_add(&pr->status_401, 1);
		} else {
			atomic_fetch_add(&pr->other_status, 1);
			fprintf(stderr, "authprobe: HTTP %ld\n", resp.status);
		}
		if (pr->pause_ms) {
			struct timespec ts = {pr->pause_ms / 1000,
					      (pr->pause_ms % 1000) * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	http_response_release(&resp);
	return NULL;
}

static const char *real_getenv(const char *name)
{
	return getenv(name);
}

int main(int argc, char **argv)
{
	struct probe pr = {0};
	long threads = 1, seconds = 0;
	char **rest = calloc((size_t)argc + 1, sizeof(char *));
	int nrest = 0, err = 0, status = 1;
	struct options o;
	struct buf msg;
	struct http *http = NULL;
	struct auth *auth = NULL;

	options_init(&o);
	buf_init(&msg, 4096);
	if (!rest)
		return 1;
	rest[nrest++] = argv[0];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atol(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atol(argv[++i]);
		else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc)
			pr.calls_each = atol(argv[++i]);
		else if (strcmp(argv[i], "--pause-ms") == 0 && i + 1 < argc)
			pr.pause_ms = atol(argv[++i]);
		else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc)
			pr.path = argv[++i];
		else
			rest[nrest++] = argv[i];
	}
	if (!pr.path || threads < 1 || threads > 64 ||
	    (!seconds && !pr.calls_each)) {
		fprintf(stderr, "usage: authprobe [--threads N] (--seconds D | "
				"--calls C) --path P [-o ...]\n");
		goto out;
	}
	if (options_parse(&o, nrest, rest, &msg) != 0 ||
	    auth_config_resolve(&o.auth, real_getenv, &msg) != 0) {
		fprintf(stderr, "authprobe: %s\n", buf_str(&msg));
		goto out;
	}
	log_set_level(o.log_level);
	struct http_config hc = {.cafile = o.cafile,
				 .allow_http = o.auth.allow_http};
	http = http_new(&hc, &err);
	auth = http ? auth_new(&o.auth, http, &err) : NULL;
	struct graph_config gc = {.base_url = o.auth.graph_url};
	pr.graph = auth ? graph_new(http, auth, &gc, &err) : NULL;
	if (!pr.graph) {
		fprintf(stderr, "authprobe: setup failed: %s\n",
			strerror(-err));
		goto out;
	}

	pthread_t th[64];
	pr.deadline = now_mono() + (double)seconds;
	for (long i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, &pr);
	for (long i = 0; i < threads; i++)
		pthread_join(th[i], NULL);

	struct auth_stats as;
	struct graph_stats gs;
	auth_get_stats(auth, &as);
	graph_get_stats(pr.graph, &gs);
	printf(
	    "{\"calls\":%ld,\"ok\":%ld,\"status_401\":%ld,\"other_status\":%ld,"
	    "\"errors\":%ld,\"token_requests\":%lu,\"token_failures\":%lu,"
	    "\"invalidations\":%lu,\"graph_requests\":%lu,\"auth_retries\":%lu}"
	    "\n",
	    atomic_load(&pr.calls), atomic_load(&pr.ok),
	    atomic_load(&pr.status_401), atomic_load(&pr.other_status),
	    atomic_load(&pr.errors), as.token_requests, as.token_failures,
	    as.invalidations, gs.requests, gs.auth_retries);
	status = 0;
out:
	graph_free(pr.graph);
	auth_free(auth);
	http_free(http);
	options_release(&o);
	buf_release(&msg);
	free(rest);
	return status;
}
