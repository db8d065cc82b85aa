/* SPDX-License-Identifier: MIT */
/*
 * Mount table reads through libmount (util-linux), which parses mountinfo's
 * escapes and stacking correctly, and the two unmount operations the
 * mounter needs. Each call reads the table afresh: mounts change under us
 * (the kubelet, other pods, dying daemons), and the table is small.
 */
#include "config.h"

#include "csi/mountinfo.h"

#include <errno.h>
#include <libmount.h>
#include <string.h>
#include <sys/mount.h>

int mountinfo_top(const char *table, const char *path, char *fstype,
		  size_t fstype_size, dev_t *devno)
{
	struct libmnt_table *tb;
	struct libmnt_fs *fs;
	int found = 0;

	tb = mnt_new_table_from_file(table ? table : "/proc/self/mountinfo");
	if (!tb)
		return errno ? -errno : -EIO;
	/* Backwards: the last mount at a path is the one on top. */
	fs = mnt_table_find_target(tb, path, MNT_ITER_BACKWARD);
	if (fs && mnt_fs_streq_target(fs, path)) {
		const char *t = mnt_fs_get_fstype(fs);
		if (fstype && fstype_size) {
			strncpy(fstype, t ? t : "", fstype_size - 1);
			fstype[fstype_size - 1] = '\0';
		}
		if (devno)
			*devno = mnt_fs_get_devno(fs);
		found = 1;
	}
	mnt_unref_table(tb);
	return found;
}

bool mountinfo_is_spfs(const char *table, const char *path, dev_t *devno)
{
	char type[64];

	return mountinfo_top(table, path, type, sizeof(type), devno) == 1 &&
	       strcmp(type, "fuse.spfs") == 0;
}

int mount_detach_spfs(const char *path)
{
	int n = 0;

	/* Bounded: each round removes one mount or stops. */
	while (n < 64 && mountinfo_is_spfs(NULL, path, NULL)) {
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
			return -errno;
		n++;
	}
	return n;
}
