/* SPDX-License-Identifier: MIT */
/*
 * The content store's sqlite settings, measured alone: writes chunk-sized
 * blobs the way the store does (a row plus its bytes, several chunks per
 * transaction), evicts the oldest past a cap, then reads every chunk back
 * with incremental blob I/O, warm and (as root) with the page cache
 * dropped. Prints one line of figures per run, so settings can be compared
 * side by side on one machine (docs/BENCHMARKS.md says what was chosen).
 *
 *   storebench FILE [journal=wal|delete|truncate|persist|off]
 *              [sync=off|normal|full] [page=65536] [chunk=4194304]
 *              [total=1073741824] [batch=1] [cap=0] [mmap=0]
 *              [secure_delete=0|1] [readers=1]
 *
 * cap > 0 keeps the stored bytes under cap by deleting the oldest chunks
 * in the writing transaction (the eviction churn of a full cache).
 * readers > 1 reads the chunks back on that many threads, each with its
 * own connection (cold reads are latency-bound: parallel streams).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *path;
static const char *journal = "wal", *sync_mode = "normal";
static long long page = 65536, chunk = 4 << 20, total = 1LL << 30;
static long long batch = 1, cap, mmap_size, secure_delete, readers = 1;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "storebench: %s: %s\n", what,
		db ? sqlite3_errmsg(db) : "?");
	exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die(db, sql);
}

static sqlite3 *open_db(int create)
{
	sqlite3 *db;
	char sql[512];

	if (sqlite3_open_v2(path, &db,
			    SQLITE_OPEN_READWRITE |
				(create ? SQLITE_OPEN_CREATE : 0) |
				SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		die(db, "open");
	sqlite3_busy_timeout(db, 10000);
	snprintf(sql, sizeof(sql),
		 "PRAGMA page_size=%lld; PRAGMA journal_mode=%s;"
		 " PRAGMA synchronous=%s; PRAGMA mmap_size=%lld;"
		 " PRAGMA secure_delete=%lld; PRAGMA cache_size=-2000;",
		 page, journal, sync_mode, mmap_size, secure_delete);
	exec(db, sql);
	return db;
}

static void drop_caches(void)
{
	FILE *f;

	sync();
	f = fopen("/proc/sys/vm/drop_caches", "w");
	if (f) {
		fputs("3\n", f);
		fclose(f);
	}
}

static long long nchunks, first_kept;

struct reader_arg {
	long long from, step;
	long long bytes;
};

static void *read_some(void *p)
{
	struct reader_arg *a = p;
	sqlite3 *db = open_db(0);
	char *buf = malloc((size_t)chunk);
	sqlite3_blob *blob = NULL;

	for (long long i = first_kept + a->from; i < nchunks; i += a->step) {
		int rc = blob ? sqlite3_blob_reopen(blob, i + 1)
			      : sqlite3_blob_open(db, "main", "chunk_data",
						  "data", i + 1, 0, &blob);
		if (rc != SQLITE_OK)
			die(db, "blob_open");
		int n = sqlite3_blob_bytes(blob);
		if (sqlite3_blob_read(blob, buf, n, 0) != SQLITE_OK)
			die(db, "blob_read");
		if (buf[0] != (char)(i & 0x7f) || buf[n - 1] != (char)(i & 0x7f))
			die(NULL, "wrong bytes");
		a->bytes += n;
	}
	sqlite3_blob_close(blob);
	sqlite3_close(db);
	free(buf);
	return NULL;
}

static double read_all(double *cpu_s, long long *bytes)
{
	pthread_t th[64];
	struct reader_arg args[64];
	double t0 = now(), c0 = cpu();

	*bytes = 0;
	for (long long r = 0; r < readers; r++) {
		args[r] = (struct reader_arg){.from = r, .step = readers};
		pthread_create(&th[r], NULL, read_some, &args[r]);
	}
	for (long long r = 0; r < readers; r++) {
		pthread_join(th[r], NULL);
		*bytes += args[r].bytes;
	}
	*cpu_s = cpu() - c0;
	return now() - t0;
}

static long long file_size(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: storebench FILE [key=value...]\n");
		return 2;
	}
	path = argv[1];
	for (int i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq)
			continue;
		*eq = 0;
		const char *k = argv[i], *v = eq + 1;
		if (!strcmp(k, "journal"))
			journal = v;
		else if (!strcmp(k, "sync"))
			sync_mode = v;
		else {
			long long n = atoll(v);
			if (!strcmp(k, "page"))
				page = n;
			else if (!strcmp(k, "chunk"))
				chunk = n;
			else if (!strcmp(k, "total"))
				total = n;
			else if (!strcmp(k, "batch"))
				batch = n;
			else if (!strcmp(k, "cap"))
				cap = n;
			else if (!strcmp(k, "mmap"))
				mmap_size = n;
			else if (!strcmp(k, "secure_delete"))
				secure_delete = n;
			else if (!strcmp(k, "readers"))
				readers = n < 1 ? 1 : n > 64 ? 64 : n;
		}
	}
	char side[4096];
	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-journal", path);
	unlink(side);

	sqlite3 *db = open_db(1);
	exec(db, "CREATE TABLE chunks(id INTEGER PRIMARY KEY, item_id TEXT, "
		 "version TEXT, idx INTEGER, len INTEGER, last_used INTEGER, "
		 "fold BLOB, UNIQUE(item_id, version, idx));"
		 "CREATE TABLE chunk_data(id INTEGER PRIMARY KEY, data BLOB);");
	sqlite3_stmt *ins_row, *ins_data, *del;
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO chunks(id, item_id, version, idx, "
			       "len, last_used, fold) VALUES(?1,'item','v',?1,"
			       "?2,?1,zeroblob(160))",
			       -1, &ins_row, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO chunk_data(id, data) VALUES(?1,?2)",
			       -1, &ins_data, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "DELETE FROM chunk_data WHERE id=?1; ", -1, &del,
			       NULL) != SQLITE_OK)
		die(db, "prepare");
	char *data = malloc((size_t)chunk);
	nchunks = total / chunk;
	long long stored = 0;
	double t0 = now(), c0 = cpu();
	for (long long i = 0; i < nchunks; i++) {
		memset(data, (int)(i & 0x7f), (size_t)chunk);
		if (i % batch == 0)
			exec(db, "BEGIN IMMEDIATE");
		while (cap && stored + chunk > cap) {
			sqlite3_bind_int64(del, 1, first_kept + 1);
			if (sqlite3_step(del) != SQLITE_DONE)
				die(db, "delete");
			sqlite3_reset(del);
			first_kept++;
			stored -= chunk;
		}
		sqlite3_bind_int64(ins_row, 1, i + 1);
		sqlite3_bind_int64(ins_row, 2, chunk);
		if (sqlite3_step(ins_row) != SQLITE_DONE)
			die(db, "insert row");
		sqlite3_reset(ins_row);
		sqlite3_bind_int64(ins_data, 1, i + 1);
		sqlite3_bind_blob64(ins_data, 2, data, (sqlite3_uint64)chunk,
				    SQLITE_STATIC);
		if (sqlite3_step(ins_data) != SQLITE_DONE)
			die(db, "insert data");
		sqlite3_reset(ins_data);
		stored += chunk;
		if (i % batch == batch - 1 || i == nchunks - 1)
			exec(db, "COMMIT");
	}
	double wt = now() - t0, wc = cpu() - c0;
	sqlite3_finalize(ins_row);
	sqlite3_finalize(ins_data);
	sqlite3_finalize(del);
	sqlite3_close(db);
	free(data);
	long long written = nchunks * chunk;
	snprintf(side, sizeof(side), "%s-wal", path);
	long long wal = file_size(side);

	double rc_warm, rc_cold;
	long long rb;
	double rt_warm = read_all(&rc_warm, &rb);
	drop_caches();
	double rt_cold = read_all(&rc_cold, &rb);
	printf("journal=%s sync=%s page=%lld batch=%lld cap=%lld mmap=%lld "
	       "secure_delete=%lld readers=%lld | write %.0f MB/s cpu %.2f "
	       "s/GiB | file %.0f MiB wal %.0f MiB | read warm %.0f MB/s "
	       "cpu %.2f s/GiB | cold %.0f MB/s\n",
	       journal, sync_mode, page, batch, cap, mmap_size, secure_delete,
	       readers, (double)written / wt / 1e6,
	       wc / ((double)written / (1 << 30)),
	       (double)file_size(path) / (1 << 20), (double)wal / (1 << 20),
	       (double)rb / rt_warm / 1e6, rc_warm / ((double)rb / (1 << 30)),
	       (double)rb / rt_cold / 1e6);
	return 0;
}
