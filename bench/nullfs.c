/* SPDX-License-Identifier: MIT */
/*
 * The FUSE ceiling of a machine: a filesystem with one file, zero.bin, of
 * SIZE bytes that are all 'x', served from memory with no work per read.
 * bench/run compares spfs's warm reads against it.
 *
 *   nullfs MOUNTPOINT -o size=BYTES [-f]
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fuse.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct {
	unsigned long long size;
} cfg = {1ull << 30};

static const struct fuse_opt opts[] = {
    {"size=%llu", offsetof(typeof(cfg), size), 0},
    FUSE_OPT_END,
};

static int null_getattr(const char *path, struct stat *st,
			struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/zero.bin") != 0)
		return -ENOENT;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = (off_t)cfg.size;
	return 0;
}

static int null_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
			off_t off, struct fuse_file_info *fi,
			enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, "zero.bin", NULL, 0, 0);
	return 0;
}

static int null_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/zero.bin") != 0)
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	return 0;
}

static int null_read(const char *path, char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	if ((unsigned long long)off >= cfg.size)
		return 0;
	if (size > cfg.size - (unsigned long long)off)
		size = (size_t)(cfg.size - (unsigned long long)off);
	memset(buf, 'x', size);
	return (int)size;
}

/* The same request size as spfs asks for (fuse/adapter.c): a fair ceiling. */
static void *null_init(struct fuse_conn_info *conn, struct fuse_config *fc)
{
	(void)fc;
	conn->max_readahead = 1u << 20;
	return NULL;
}

static const struct fuse_operations ops = {
    .init = null_init,
    .getattr = null_getattr,
    .readdir = null_readdir,
    .open = null_open,
    .read = null_read,
};

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);

	if (fuse_opt_parse(&args, &cfg, opts, NULL) != 0)
		return 2;
	int rc = fuse_main(args.argc, args.argv, &ops, NULL);
	fuse_opt_free_args(&args);
	return rc;
}
