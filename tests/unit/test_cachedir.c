/* SPDX-License-Identifier: MIT */
/* The cache directory's checks, on real directories, links and files: what
 * a user who can plant things near spfs's cache could try. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "cachedir.h"

static char top[] = "/tmp/spfs-test-cachedir-XXXXXX";

static char *at(const char *rel)
{
	static char paths[4][512];
	static int next;
	char *p = paths[next++ % 4];

	snprintf(p, 512, "%s/%s", top, rel);
	return p;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_ERROR + 0);
	return mkdtemp(top) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	return system(cmd);
}

static void test_created_private(void **state)
{
	struct buf msg;

	(void)state;
	buf_init(&msg, 1024);
	int fd = cachedir_open(at("new/a/b/"), &msg);
	assert_true(fd >= 0);
	assert_int_equal(mode_of(at("new/a/b")), 0700);
	assert_int_equal(mode_of(at("new/a")), 0700);
	close(fd);
	buf_release(&msg);
}

/* A link as the cache directory is refused, with or without a trailing
 * slash, and its target keeps its mode. */
static void test_symlink_refused(void **state)
{
	struct buf msg;

	(void)state;
	buf_init(&msg, 1024);
	assert_int_equal(mkdir(at("victim"), 0755), 0);
	assert_int_equal(chmod(at("victim"), 0755), 0);
	assert_int_equal(symlink(at("victim"), at("link")), 0);
	assert_int_equal(cachedir_open(at("link"), &msg), -ELOOP);
	assert_non_null(strstr(buf_str(&msg), "symbolic link"));
	buf_reset(&msg);
	assert_int_equal(cachedir_open(at("link/"), &msg), -ELOOP);
	assert_int_equal(mode_of(at("victim")), 0755);
	buf_release(&msg);
}

/* A directory of another user is refused; one of ours that others may
 * write into is tightened to 0700 (a Kubernetes emptyDir is 0777). */
static void test_owner_and_mode(void **state)
{
	struct buf msg;

	(void)state;
	buf_init(&msg, 1024);
	assert_int_equal(mkdir(at("open"), 0777), 0);
	assert_int_equal(chmod(at("open"), 0777), 0);
	int fd = cachedir_open(at("open"), &msg);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mode_of(at("open")), 0700);

	if (geteuid() != 0) {
		buf_release(&msg);
		skip(); /* chown to another user needs root */
	}
	assert_int_equal(mkdir(at("theirs"), 0777), 0);
	assert_int_equal(chmod(at("theirs"), 0777), 0);
	assert_int_equal(chown(at("theirs"), 65534, 65534), 0);
	assert_int_equal(cachedir_open(at("theirs"), &msg), -EPERM);
	assert_non_null(strstr(buf_str(&msg), "belongs to uid 65534"));
	assert_int_equal(mode_of(at("theirs")), 0777);
	buf_release(&msg);
}

/* Files in it: a planted link is not followed, a hard link to someone
 * else's file is not truncated, a FIFO does not block; a file of ours is
 * opened and truncated when asked. */
static void test_files_in_it(void **state)
{
	struct buf msg;
	char data[16];

	(void)state;
	buf_init(&msg, 1024);
	int dir = cachedir_open(at("files"), &msg);
	assert_true(dir >= 0);

	int v = open(at("victim.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(v >= 0);
	assert_int_equal(write(v, "precious", 8), 8);
	close(v);
	assert_int_equal(symlink(at("victim.txt"), at("files/source-x")), 0);
	assert_int_equal(
	    cachedir_openat(dir, "source-x", O_WRONLY | O_CREAT | O_TRUNC),
	    -ELOOP);
	if (geteuid() == 0) {
		assert_int_equal(chown(at("victim.txt"), 65534, 65534), 0);
		assert_int_equal(link(at("victim.txt"), at("files/source-y")),
				 0);
		assert_int_equal(cachedir_openat(dir, "source-y",
						 O_WRONLY | O_CREAT | O_TRUNC),
				 -EPERM);
	}
	v = open(at("victim.txt"), O_RDONLY);
	assert_int_equal(read(v, data, sizeof(data)), 8);
	close(v);

	assert_int_equal(mkfifo(at("files/fifo"), 0600), 0);
	assert_int_equal(cachedir_openat(dir, "fifo", O_RDONLY), -EPERM);

	int fd = cachedir_openat(dir, "mine", O_WRONLY | O_CREAT | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	assert_int_equal(mode_of(at("files/mine")), 0600);
	fd = cachedir_openat(dir, "mine", O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	close(fd);
	struct stat st;
	assert_int_equal(stat(at("files/mine"), &st), 0);
	assert_int_equal(st.st_size, 0);
	close(dir);
	buf_release(&msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_created_private),
	    cmocka_unit_test(test_symlink_refused),
	    cmocka_unit_test(test_owner_and_mode),
	    cmocka_unit_test(test_files_in_it),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
