/* SPDX-License-Identifier: MIT */
/* Reading mountinfo through libmount: the topmost of stacked mounts, the
 * device that tells a current bind from a stale one, escaped paths. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "csi/mountinfo.h"

static char table[64];

/* Two spfs mounts stacked on one target (a dead one under a live one), a
 * tmpfs below them, a path with a space (\040 in mountinfo). */
static const char fixture[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "30 22 0:40 / /var/lib/kubelet/pods/u1/mount rw shared:5 - tmpfs "
    "tmpfs rw\n"
    "31 30 0:45 / /var/lib/kubelet/pods/u1/mount ro,nosuid,nodev shared:6 "
    "- fuse.spfs https://contoso.sharepoint.com/sites/A rw\n"
    "32 31 0:47 / /var/lib/kubelet/pods/u1/mount ro,nosuid,nodev shared:7 "
    "- fuse.spfs https://contoso.sharepoint.com/sites/A rw\n"
    "40 22 0:47 / /var/lib/spfs-csi/daemons/k/mnt rw,nosuid,nodev - "
    "fuse.spfs https://contoso.sharepoint.com/sites/A rw\n"
    "41 22 0:48 / /var/lib/kubelet/pods/u2/my\\040volume/mount rw - "
    "fuse.spfs x rw\n";

static int setup(void **state)
{
	FILE *f;
	int fd;

	(void)state;
	snprintf(table, sizeof(table), "/tmp/spfs-mountinfo-XXXXXX");
	fd = mkstemp(table);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	fputs(fixture, f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(table);
	return 0;
}

static void test_top_of_stack(void **state)
{
	char type[32];
	dev_t dev = 0, global = 0;

	(void)state;
	assert_int_equal(mountinfo_top(table, "/var/lib/kubelet/pods/u1/mount",
				       type, sizeof(type), &dev),
			 1);
	assert_string_equal(type, "fuse.spfs");
	assert_int_equal(major(dev), 0);
	assert_int_equal(minor(dev), 47);
	/* The daemon's mount has the same device: the bind is current. */
	assert_true(mountinfo_is_spfs(table, "/var/lib/spfs-csi/daemons/k/mnt",
				      &global));
	assert_true(dev == global);
}

static void test_not_mounted(void **state)
{
	char type[32] = "unchanged";

	(void)state;
	assert_int_equal(mountinfo_top(table, "/var/lib/kubelet/pods/u1", type,
				       sizeof(type), NULL),
			 0);
	assert_string_equal(type, "unchanged");
	assert_false(mountinfo_is_spfs(table, "/var/lib/kubelet", NULL));
	/* A prefix is not a match. */
	assert_false(
	    mountinfo_is_spfs(table, "/var/lib/kubelet/pods/u1/moun", NULL));
	assert_true(mountinfo_is_spfs(table, "/", NULL) == false);
}

static void test_escaped_path(void **state)
{
	(void)state;
	assert_true(mountinfo_is_spfs(
	    table, "/var/lib/kubelet/pods/u2/my volume/mount", NULL));
}

static void test_missing_table(void **state)
{
	(void)state;
	assert_true(
	    mountinfo_top("/nonexistent/mountinfo", "/", NULL, 0, NULL) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_top_of_stack),
	    cmocka_unit_test(test_not_mounted),
	    cmocka_unit_test(test_escaped_path),
	    cmocka_unit_test(test_missing_table),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
