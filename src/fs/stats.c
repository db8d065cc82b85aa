/* SPDX-License-Identifier: MIT */
/*
 * Counters: the user.spfs.stats JSON and the Prometheus text, gathered
 * from the reader, Graph and the content store (the probes are probe.c's).
 */
#include "config.h"

#include "fs/fs.h"
#include "fs/fs_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "cache/content.h"
#include "cache/meta.h"
#include "fs/item_map.h"
#include "fs/reader.h"
#include "graph/graph.h"
#include "graph/item.h"

int fs_stats_json(struct fs *fs, char *out, size_t size)
{
	struct reader_stats rs;
	struct graph_stats gs;
	struct content_stats cs = {0};
	struct buf b;
	int n;

	reader_get_stats(fs->reader, &rs);
	graph_get_stats(fs->g, &gs);
	if (fs->store)
		content_get_stats(fs->store, &cs);
	buf_init(&b, 8192);
	int err = buf_appendf(
	    &b,
	    "{\"graph_requests\":%lu,\"graph_throttles\":%lu,"
	    "\"graph_retries\":%lu,\"graph_auth_retries\":%lu,"
	    "\"graph_throttled_seconds\":%.1f,"
	    "\"token_requests\":%lu,\"token_failures\":%lu,"
	    "\"token_expires_at\":%lld,"
	    "\"downloads\":%llu,\"download_bytes\":%llu,"
	    "\"download_retries\":%llu,\"url_refreshes\":%llu,"
	    "\"cache_hits\":%llu,\"cache_misses\":%llu,"
	    "\"chunks_stored\":%llu,\"readahead_chunks\":%llu,"
	    "\"prefetched_files\":%llu,"
	    "\"hash_verified\":%llu,\"hash_mismatches\":%llu,"
	    "\"size_corrections\":%llu,\"store_errors\":%llu,"
	    "\"store_skipped\":%llu,\"store_queued_bytes\":%llu,"
	    "\"read_timeouts\":%llu,"
	    "\"open_files\":%llu,\"memory_bytes\":%llu,\"streams\":%llu,"
	    "\"cache_enabled\":%s,\"cache_bytes\":%llu,"
	    "\"cache_chunks\":%llu,\"cache_cap\":%llu,"
	    "\"cache_disk_bytes\":%llu,\"cache_resets\":%llu,"
	    "\"cache_damaged_chunks\":%llu,"
	    "\"evicted_chunks\":%llu,\"delta_healthy\":%s}\n",
	    gs.requests, gs.throttles, gs.retries, gs.auth_retries,
	    gs.throttled_seconds, gs.token_requests, gs.token_failures,
	    gs.token_expires_at, (unsigned long long)rs.downloads,
	    (unsigned long long)rs.download_bytes,
	    (unsigned long long)rs.download_retries,
	    (unsigned long long)rs.url_refreshes,
	    (unsigned long long)rs.cache_hits,
	    (unsigned long long)rs.cache_misses,
	    (unsigned long long)rs.chunks_stored,
	    (unsigned long long)rs.readahead_chunks,
	    (unsigned long long)rs.prefetched_files,
	    (unsigned long long)rs.hash_verified,
	    (unsigned long long)rs.hash_mismatches,
	    (unsigned long long)rs.size_corrections,
	    (unsigned long long)rs.store_errors,
	    (unsigned long long)rs.store_skipped,
	    (unsigned long long)rs.store_queued_bytes,
	    (unsigned long long)rs.read_timeouts,
	    (unsigned long long)rs.open_files,
	    (unsigned long long)rs.memory_bytes, (unsigned long long)rs.streams,
	    fs->store ? "true" : "false", (unsigned long long)cs.bytes,
	    (unsigned long long)cs.chunks,
	    (unsigned long long)fs->cfg.cache_size,
	    (unsigned long long)cs.disk_bytes, (unsigned long long)cs.resets,
	    (unsigned long long)cs.damaged_chunks,
	    (unsigned long long)cs.evicted,
	    atomic_load(&fs->delta_healthy) ? "true" : "false");
	if (err) {
		buf_release(&b);
		return err;
	}
	n = (int)b.len;
	if (size && (size_t)n > size)
		n = -ERANGE;
	else if (size)
		memcpy(out, b.data, (size_t)n);
	buf_release(&b);
	return n;
}

static int metric(struct buf *b, const char *name, const char *type,
		  const char *help, double value)
{
	return buf_appendf(
	    b, "# HELP spfs_%s %s\n# TYPE spfs_%s %s\nspfs_%s %.17g\n", name,
	    help, name, type, name, value);
}

static void route_metric(void *ctx, const char *route, const char *status,
			 unsigned long n)
{
	buf_appendf(
	    ctx, "spfs_graph_requests_total{route=\"%s\",status=\"%s\"} %lu\n",
	    route, status, n);
}

int fs_metrics_text(struct fs *fs, struct buf *b)
{
	struct reader_stats rs;
	struct graph_stats gs;
	struct content_stats cs = {0};
	long long now = (long long)time(NULL);
	long long delta_ok = atomic_load(&fs->delta_ok_at);
	int err = 0;

	reader_get_stats(fs->reader, &rs);
	graph_get_stats(fs->g, &gs);
	if (fs->store)
		content_get_stats(fs->store, &cs);
	err |=
	    buf_append_str(b, "# HELP spfs_graph_requests_total HTTP requests "
			      "to Graph and download URLs, by route and "
			      "status class.\n# TYPE spfs_graph_requests_total "
			      "counter\n");
	graph_route_counts(fs->g, route_metric, b);
	const struct {
		const char *name, *type, *help;
		double value;
	} list[] = {
	    {"mounted", "gauge", "1 while mounted.", fs_mounted(fs)},
	    {"ready", "gauge",
	     "1 when mounted and the root lists (from the network or the "
	     "cache).",
	     fs_ready(fs)},
	    {"graph_throttles_total", "counter", "429/503 answers received.",
	     (double)gs.throttles},
	    {"graph_retry_after_seconds_total", "counter",
	     "Seconds waited because of Retry-After.", gs.throttled_seconds},
	    {"graph_retries_total", "counter",
	     "Graph requests retried after 5xx or network errors.",
	     (double)gs.retries},
	    {"graph_auth_retries_total", "counter",
	     "401s answered by a token refresh and one retry.",
	     (double)gs.auth_retries},
	    {"token_requests_total", "counter",
	     "Requests to the token endpoint (first token and refreshes).",
	     (double)gs.token_requests},
	    {"token_failures_total", "counter", "Failed token requests.",
	     (double)gs.token_failures},
	    {"token_expiry_seconds", "gauge",
	     "Seconds until the current access token expires.",
	     gs.token_expires_at ? (double)(gs.token_expires_at - now) : 0},
	    {"downloads_total", "counter", "Requests to download URLs.",
	     (double)rs.downloads},
	    {"download_bytes_total", "counter", "File bytes downloaded.",
	     (double)rs.download_bytes},
	    {"download_retries_total", "counter",
	     "Download requests resumed or retried.",
	     (double)rs.download_retries},
	    {"download_url_refreshes_total", "counter",
	     "Download URLs asked of Graph again (expired or refused).",
	     (double)rs.url_refreshes},
	    {"prefetched_files_total", "counter",
	     "Small files fetched ahead of their open (folders read in order).",
	     (double)rs.prefetched_files},
	    {"cache_hits_total", "counter", "Chunk reads served by the cache.",
	     (double)rs.cache_hits},
	    {"cache_misses_total", "counter",
	     "Chunks fetched over the network.", (double)rs.cache_misses},
	    {"cache_bytes", "gauge", "Bytes in the content cache.",
	     (double)cs.bytes},
	    {"cache_chunks", "gauge", "Chunks in the content cache.",
	     (double)cs.chunks},
	    {"cache_capacity_bytes", "gauge", "The content cache's cap.",
	     fs->store ? (double)fs->cfg.cache_size : 0},
	    {"cache_evictions_total", "counter", "Chunks evicted.",
	     (double)cs.evicted},
	    {"cache_store_errors_total", "counter",
	     "Chunks the cache could not store (served from memory).",
	     (double)rs.store_errors},
	    {"cache_store_skipped_total", "counter",
	     "Chunks not stored because the store queue was full.",
	     (double)rs.store_skipped},
	    {"cache_store_queued_bytes", "gauge",
	     "Chunk bytes waiting for the store.",
	     (double)rs.store_queued_bytes},
	    {"cache_disk_bytes", "gauge",
	     "Disk use of the cache's files for this library.",
	     (double)cs.disk_bytes},
	    {"cache_resets_total", "counter",
	     "Times the content cache started empty (damaged, or unclean).",
	     (double)cs.resets},
	    {"cache_damaged_chunks_total", "counter",
	     "Stored chunks that failed their check on read (dropped).",
	     (double)cs.damaged_chunks},
	    {"read_timeouts_total", "counter",
	     "Reads and fetches that ran out of read_timeout.",
	     (double)rs.read_timeouts},
	    {"read_streams", "gauge", "Files being read sequentially.",
	     (double)rs.streams},
	    {"hash_verified_total", "counter",
	     "Files whose bytes matched SharePoint's quickXorHash.",
	     (double)rs.hash_verified},
	    {"hash_mismatches_total", "counter",
	     "Downloads that did not match SharePoint's quickXorHash.",
	     (double)rs.hash_mismatches},
	    {"size_corrections_total", "counter",
	     "Files whose served length differed from the listed size.",
	     (double)rs.size_corrections},
	    {"open_files", "gauge", "Files open through the mount.",
	     (double)rs.open_files},
	    {"memory_chunk_bytes", "gauge", "Chunk bytes held in memory.",
	     (double)rs.memory_bytes},
	    {"delta_healthy", "gauge", "1 when the last change poll succeeded.",
	     atomic_load(&fs->delta_healthy)},
	    {"delta_lag_seconds", "gauge",
	     "Seconds since the last successful change poll (-1: none yet).",
	     delta_ok ? (double)(now - delta_ok) : -1},
	};
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]) && !err; i++)
		err = metric(b, list[i].name, list[i].type, list[i].help,
			     list[i].value);
	return err;
}
