/* SPDX-License-Identifier: MIT */
/* The sqlite content store, on real database files: checked reads, the
 * cap, pins, trust at open, damage, kill -9 in the middle of writes. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/qxh.h"
#include "cache/content.h"

#define CHUNK (256u << 10)

static char dir[] = "/tmp/spfs-test-content-XXXXXX";
static char path[256], marker[300], neighbour[300];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/lib.content.db", dir);
	snprintf(marker, sizeof(marker), "%s.open", path);
	snprintf(neighbour, sizeof(neighbour), "%s/lib.meta.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void fresh(void)
{
	char j[300];

	unlink(path);
	unlink(marker);
	unlink(neighbour);
	snprintf(j, sizeof(j), "%s-journal", path);
	unlink(j);
}

static struct content *open_store(uint64_t cap)
{
	const char *nb[] = {neighbour, NULL};
	struct content_config cc = {.path = path,
				    .max_bytes = cap,
				    .chunk_size = CHUNK,
				    .neighbours = nb};
	int err;
	struct content *c = content_open(&cc, &err);

	assert_non_null(c);
	assert_int_equal(err, 0);
	return c;
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)((i * 131u + seed * 7u) >> 3);
}

/* The folds of a chunk's blocks, as a fetch computes them. */
static unsigned char *folds_of(const unsigned char *data, size_t len,
			       uint64_t index)
{
	unsigned char *f = malloc(content_folds_len(len) + 1);

	for (size_t b = 0; b * CONTENT_BLOCK < len; b++) {
		size_t n = len - b * CONTENT_BLOCK < CONTENT_BLOCK
			       ? len - b * CONTENT_BLOCK
			       : CONTENT_BLOCK;
		struct qxh h;
		qxh_init_at(&h, index * CHUNK + b * CONTENT_BLOCK);
		qxh_update(&h, data + b * CONTENT_BLOCK, n);
		memcpy(f + b * CONTENT_FOLD_LEN, h.fold, CONTENT_FOLD_LEN);
	}
	return f;
}

static int put(struct content *c, const char *item, const char *version,
	       uint64_t index, const unsigned char *data, size_t len)
{
	unsigned char *f = folds_of(data, len, index);
	struct content_chunk k = {.item_id = item,
				  .version = version,
				  .index = index,
				  .data = data,
				  .len = len,
				  .folds = f};
	int n = content_put(c, &k, 1);

	free(f);
	return n;
}

static void test_put_read_checked(void **state)
{
	enum { N = CHUNK - 1000 }; /* a short last block */
	unsigned char *in = malloc(N), *out = malloc(N);

	(void)state;
	fresh();
	struct content *c = open_store(64u << 20);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	fill(in, N, 1);
	assert_int_equal(put(c, "ITEM", "\"c:{X},1\"", 3, in, N), 1);
	assert_int_equal(content_chunk_len(c, "ITEM", "\"c:{X},1\"", 3), N);
	assert_int_equal(content_chunk_len(c, "ITEM", "\"c:{X},1\"", 2), 0);
	/* Whole, inside one block, across blocks, to the end. */
	assert_int_equal(content_read(c, "ITEM", "\"c:{X},1\"", 3, 0, out, N),
			 0);
	assert_memory_equal(in, out, N);
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},1\"", 3, 12345, out, 777), 0);
	assert_memory_equal(in + 12345, out, 777);
	assert_int_equal(content_read(c, "ITEM", "\"c:{X},1\"", 3,
				      CONTENT_BLOCK - 10, out, 100000),
			 0);
	assert_memory_equal(in + CONTENT_BLOCK - 10, out, 100000);
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},1\"", 3, N - 10, out, 10), 0);
	assert_memory_equal(in + N - 10, out, 10);
	/* Past the end, another version, another chunk: misses. */
	assert_int_equal(
	    content_read(c, "ITEM", "\"c:{X},1\"", 3, N - 10, out, 11),
	    -ENOENT);
	assert_int_equal(content_read(c, "ITEM", "\"c:{X},2\"", 3, 0, out, 1),
			 -ENOENT);
	assert_int_equal(content_read(c, "ITEM", "\"c:{X},1\"", 4, 0, out, 1),
			 -ENOENT);
	/* Replacing a chunk keeps the count right. */
	assert_int_equal(put(c, "ITEM", "\"c:{X},1\"", 3, in, 100), 1);
	struct content_stats s;
	content_get_stats(c, &s);
	assert_int_equal(s.bytes, 100);
	assert_int_equal(s.chunks, 1);
	/* A newer version makes the old one go. */
	assert_int_equal(put(c, "ITEM", "\"c:{X},2\"", 0, in, 50), 1);
	assert_int_equal(content_drop_item(c, "ITEM", "\"c:{X},2\""), 0);
	assert_int_equal(content_read(c, "ITEM", "\"c:{X},1\"", 3, 0, out, 1),
			 -ENOENT);
	assert_int_equal(content_read(c, "ITEM", "\"c:{X},2\"", 0, 0, out, 50),
			 0);
	content_close(c);

	/* A clean close: the next open trusts the file. */
	assert_int_equal(access(marker, F_OK), -1);
	c = open_store(64u << 20);
	content_get_stats(c, &s);
	assert_int_equal(s.chunks, 1);
	assert_int_equal(s.resets, 0);
	assert_int_equal(content_read(c, "ITEM", "\"c:{X},2\"", 0, 0, out, 50),
			 0);
	assert_memory_equal(in, out, 50);
	content_close(c);
	free(in);
	free(out);
}

static void test_cap_counts_everything_and_spares_pinned(void **state)
{
	unsigned char *buf = malloc(CHUNK), *out = malloc(CHUNK);
	char item[16];

	(void)state;
	fresh();
	/* A neighbour (the metadata store) of 1 MiB shares a 6 MiB cap. */
	FILE *nb = fopen(neighbour, "w");
	assert_non_null(nb);
	for (int i = 0; i < 256; i++)
		fwrite(buf, 1, 4096, nb);
	fclose(nb);
	struct content *c = open_store(6u << 20);
	for (unsigned i = 0; i < 40; i++) {
		snprintf(item, sizeof(item), "I%u", i);
		fill(buf, CHUNK, i);
		assert_int_equal(put(c, item, "v", 0, buf, CHUNK), 1);
		if (i == 0)
			content_pin(c, "I0");
		if (i > 1) /* I1 stays recently used */
			assert_int_equal(
			    content_read(c, "I1", "v", 0, 0, out, 1), 0);
		struct content_stats s;
		content_get_stats(c, &s);
		/* The directory's files stay within the cap. */
		assert_true(s.disk_bytes <= 6u << 20);
	}
	struct content_stats s;
	content_get_stats(c, &s);
	assert_true(s.evicted > 0);
	assert_true(s.chunks < 40);
	/* The pinned and the recently read survive; the oldest went. */
	assert_int_equal(content_read(c, "I0", "v", 0, 0, out, CHUNK), 0);
	fill(buf, CHUNK, 0);
	assert_memory_equal(buf, out, CHUNK);
	assert_int_equal(content_read(c, "I1", "v", 0, 0, out, 1), 0);
	assert_int_equal(content_read(c, "I2", "v", 0, 0, out, 1), -ENOENT);
	assert_int_equal(content_read(c, "I39", "v", 0, 0, out, 1), 0);
	/* A chunk larger than what the cap leaves is not stored. */
	unsigned char *big = calloc(1, 8u << 20);
	struct content_chunk k = {"BIG", "v", 0, big, 8u << 20, NULL, 0};
	unsigned char *f = folds_of(big, 8u << 20, 0);
	k.folds = f;
	assert_int_equal(content_put(c, &k, 1), 0);
	assert_int_equal(k.stored, 0);
	free(f);
	free(big);
	content_unpin(c, "I0");
	content_close(c);
	free(buf);
	free(out);
}

/* Overwrites len bytes of the database file at off. */
static void scribble(off_t off, size_t len, unsigned char v)
{
	int fd = open(path, O_WRONLY);
	unsigned char b[4096];

	assert_true(fd >= 0);
	memset(b, v, sizeof(b));
	while (len) {
		size_t n = len < sizeof(b) ? len : sizeof(b);
		assert_int_equal(pwrite(fd, b, n, off), (ssize_t)n);
		off += (off_t)n;
		len -= n;
	}
	close(fd);
}

static void test_damaged_blocks_are_misses(void **state)
{
	unsigned char *buf = malloc(CHUNK), *out = malloc(CHUNK);
	char item[16];

	(void)state;
	fresh();
	struct content *c = open_store(64u << 20);
	for (unsigned i = 0; i < 8; i++) {
		snprintf(item, sizeof(item), "D%u", i);
		fill(buf, CHUNK, i + 100);
		assert_int_equal(put(c, item, "v", 0, buf, CHUNK), 1);
	}
	content_close(c);
	/* Damage the middle of the file, where chunk bytes are: whatever it
	 * hits, no read may return wrong bytes. */
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	scribble(st.st_size / 2, 3 * CONTENT_BLOCK, 0x5a);
	c = open_store(64u << 20);
	unsigned good = 0, bad = 0;
	for (unsigned i = 0; i < 8; i++) {
		snprintf(item, sizeof(item), "D%u", i);
		fill(buf, CHUNK, i + 100);
		int e = content_read(c, item, "v", 0, 0, out, CHUNK);
		if (e == 0) {
			assert_memory_equal(buf, out, CHUNK);
			good++;
		} else {
			assert_true(e == -EUCLEAN || e == -ENOENT);
			bad++;
		}
	}
	assert_true(bad >= 1);
	assert_true(good >= 4);
	struct content_stats s;
	content_get_stats(c, &s);
	assert_true(s.damaged_chunks >= 1 || s.resets >= 1);
	/* The next write drops the damaged chunk; when dropping it finds the
	 * damage reaches sqlite's own structures, the store starts empty at
	 * the write after. Either way it keeps working. */
	long ev = content_evict(c);
	assert_true(ev >= 0 || ev == -EUCLEAN);
	fill(buf, CHUNK, 7);
	assert_int_equal(put(c, "after", "v", 0, buf, CHUNK), 1);
	assert_int_equal(content_read(c, "after", "v", 0, 0, out, CHUNK), 0);
	assert_memory_equal(buf, out, CHUNK);
	content_get_stats(c, &s);
	assert_true(ev >= 0 || s.resets == 1);
	content_close(c);
	free(buf);
	free(out);
}

/* The store was started empty at open, once, and works. Closes it. */
static void started_empty(struct content *c, const unsigned char *buf, size_t n)
{
	struct content_stats s;

	content_get_stats(c, &s);
	assert_int_equal(s.resets, 1);
	assert_int_equal(s.chunks, 0);
	assert_int_equal(put(c, "K", "v", 0, buf, n), 1);
	content_close(c);
}

static void test_untrusted_files_start_empty(void **state)
{
	unsigned char buf[1000];
	struct content_stats s;

	(void)state;
	fill(buf, sizeof(buf), 3);
	/* Left open by a crashed process of this boot: kept (the journal
	 * makes it whole). */
	fresh();
	struct content *c = open_store(64u << 20);
	assert_int_equal(put(c, "K", "v", 0, buf, sizeof(buf)), 1);
	assert_int_equal(access(marker, F_OK), 0);
	char keep[1200];
	snprintf(keep, sizeof(keep), "cp %s %s.bak && cp %s %s.mbak", path,
		 path, marker, marker);
	assert_int_equal(system(keep), 0);
	content_close(c);
	snprintf(keep, sizeof(keep), "mv %s.bak %s && mv %s.mbak %s", path,
		 path, marker, marker);
	assert_int_equal(system(keep), 0);
	c = open_store(64u << 20);
	content_get_stats(c, &s);
	assert_int_equal(s.resets, 0);
	assert_int_equal(s.chunks, 1);
	content_close(c);

	/* Left open in another boot (a power loss): started empty. */
	c = open_store(64u << 20);
	content_close(c);
	FILE *m = fopen(marker, "w");
	fputs("00000000-1111-2222-3333-444444444444", m);
	fclose(m);
	started_empty(open_store(64u << 20), buf, sizeof(buf));

	/* Truncated: started empty. */
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size / 2 + 1), 0);
	started_empty(open_store(64u << 20), buf, sizeof(buf));

	/* Another chunk size: started empty. */
	const char *nb[] = {NULL};
	struct content_config cc = {.path = path,
				    .max_bytes = 64u << 20,
				    .chunk_size = CHUNK * 2,
				    .neighbours = nb};
	int err;
	c = content_open(&cc, &err);
	assert_non_null(c);
	started_empty(c, buf, sizeof(buf));

	/* Not a database at all. */
	FILE *g = fopen(path, "w");
	fputs("garbage garbage garbage garbage garbage garbage garbage "
	      "garbage garbage garbage garbage garbage garbage garbage",
	      g);
	fclose(g);
	started_empty(open_store(64u << 20), buf, sizeof(buf));
}

/* A writer killed with SIGKILL at random points: every chunk the store
 * keeps reads back right, and the store always opens. */
static void test_kill9_while_writing(void **state)
{
	unsigned char *buf = malloc(CHUNK), *out = malloc(CHUNK);
	char item[16];

	(void)state;
	fresh();
	srand((unsigned)time(NULL));
	for (int round = 0; round < 6; round++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct content *c = open_store(8u << 20);
			unsigned char *buf2 = malloc(CHUNK);
			char item2[16];
			for (unsigned i = 0;; i += 2) {
				/* Two chunks per transaction, the cap making
				 * each evict older ones. */
				snprintf(item, sizeof(item), "W%u", i % 64);
				snprintf(item2, sizeof(item2), "W%u",
					 (i + 1) % 64);
				fill(buf, CHUNK, i % 64);
				fill(buf2, CHUNK, (i + 1) % 64);
				unsigned char *f = folds_of(buf, CHUNK, 0);
				unsigned char *f2 = folds_of(buf2, CHUNK, 0);
				struct content_chunk k[2] = {
				    {item, "v", 0, buf, CHUNK, f, 0},
				    {item2, "v", 0, buf2, CHUNK, f2, 0}};
				content_put(c, k, 2);
				free(f);
				free(f2);
			}
		}
		struct timespec t = {0, (long)(50 + rand() % 250) * 1000000L};
		nanosleep(&t, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		struct content *c = open_store(8u << 20);
		struct content_stats s;
		content_get_stats(c, &s);
		assert_int_equal(s.resets, 0);
		for (unsigned i = 0; i < 64; i++) {
			snprintf(item, sizeof(item), "W%u", i);
			if (content_read(c, item, "v", 0, 0, out, CHUNK) != 0)
				continue;
			fill(buf, CHUNK, i);
			assert_memory_equal(buf, out, CHUNK);
		}
		content_close(c);
	}
	free(buf);
	free(out);
}

static int scan_fn(void *ctx, uint64_t index, uint64_t len,
		   const unsigned char fold[CONTENT_FOLD_LEN]);

/* Scans, file rows and version drops: what the reader verifies with. */
static void test_scan_and_file_rows(void **state)
{
	unsigned char data[3 * CHUNK];

	(void)state;
	fresh();
	struct content *c = open_store(64u << 20);
	fill(data, sizeof(data), 9);
	for (int k = 2; k >= 0; k--)
		assert_int_equal(
		    put(c, "F", "v1", (uint64_t)k, data + k * CHUNK, CHUNK), 1);
	/* The XOR of the scanned chunk folds is the file's hash. */
	struct qxh merged, whole;
	qxh_init(&merged);
	int seen = 0;
	struct scan {
		struct qxh *h;
		int *seen;
	} sc = {&merged, &seen};
	assert_int_equal(content_scan(c, "F", "v1", scan_fn, &sc), 0);
	assert_int_equal(seen, 3);
	merged.length = sizeof(data);
	qxh_init(&whole);
	qxh_update(&whole, data, sizeof(data));
	char a[QXH_B64_LEN + 1], b[QXH_B64_LEN + 1];
	qxh_final_b64(&merged, a);
	qxh_final_b64(&whole, b);
	assert_string_equal(a, b);

	struct content_file row = {
	    .size = 3000, .verified = 1, .mismatches = 1};
	struct content_file got;
	assert_int_equal(content_file_get(c, "F", "v1", &got), -ENOENT);
	assert_int_equal(content_file_set(c, "F", "v1", &row), 0);
	assert_int_equal(content_file_get(c, "F", "v1", &got), 0);
	assert_int_equal(got.size, 3000);
	assert_int_equal(got.verified, 1);
	assert_int_equal(got.mismatches, 1);
	/* Dropping the version drops its chunks, keeps its row. */
	assert_int_equal(content_drop_version(c, "F", "v1", 1), 0);
	assert_int_equal(content_chunk_len(c, "F", "v1", 0), 0);
	assert_int_equal(content_file_get(c, "F", "v1", &got), 0);
	/* A newer version makes the old rows go. */
	assert_int_equal(content_drop_item(c, "F", "v2"), 0);
	assert_int_equal(content_file_get(c, "F", "v1", &got), -ENOENT);
	content_close(c);
}

static int scan_fn(void *ctx, uint64_t index, uint64_t len,
		   const unsigned char fold[CONTENT_FOLD_LEN])
{
	struct {
		struct qxh *h;
		int *seen;
	} *sc = ctx;

	(void)index;
	assert_int_equal(len, CHUNK);
	qxh_merge(sc->h, fold);
	(*sc->seen)++;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_read_checked),
	    cmocka_unit_test(test_cap_counts_everything_and_spares_pinned),
	    cmocka_unit_test(test_damaged_blocks_are_misses),
	    cmocka_unit_test(test_untrusted_files_start_empty),
	    cmocka_unit_test(test_kill9_while_writing),
	    cmocka_unit_test(test_scan_and_file_rows),
	};
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
