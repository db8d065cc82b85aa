/* SPDX-License-Identifier: MIT */
/*
 * The cache directory's checks (see cachedir.h). The directory is opened
 * once with O_NOFOLLOW and judged by fstat of that descriptor, so what is
 * checked is what is used; mode changes go through the descriptor too
 * (fchmod), never through a name someone could swap.
 */
#include "config.h"

#include "cachedir.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

/* mkdir -p of the parents of path, each level 0700 when we create it. */
static void make_parents(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(path, 0700);
		*p = '/';
	}
}

int cachedir_open(const char *path, struct buf *msg)
{
	struct buf b;
	struct stat st;
	int fd = -1, err = 0;

	buf_init(&b, 4096);
	if (buf_append_str(&b, path) != 0) {
		buf_release(&b);
		return -ENOMEM;
	}
	/* "dir/" would let O_NOFOLLOW pass a symlink: no trailing slashes. */
	while (b.len > 1 && b.data[b.len - 1] == '/')
		b.data[--b.len] = '\0';
	make_parents(b.data);
	if (mkdir(b.data, 0700) != 0 && errno != EEXIST) {
		err = -errno;
		buf_appendf(msg, "cache directory %s: %s", b.data,
			    strerror(errno));
		goto out;
	}
	fd = open(b.data, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (errno == ELOOP || errno == ENOTDIR) {
			struct stat lst;
			int link =
			    lstat(b.data, &lst) == 0 && S_ISLNK(lst.st_mode);
			err = link ? -ELOOP : -ENOTDIR;
			buf_appendf(msg,
				    link ? "cache directory %s is a symbolic "
					   "link: give the real directory as "
					   "-o cache_dir"
					 : "cache directory %s is not a "
					   "directory",
				    b.data);
		} else {
			buf_appendf(msg, "cache directory %s: %s", b.data,
				    strerror(errno));
		}
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		err = -errno;
		buf_appendf(msg, "cache directory %s: %s", b.data,
			    strerror(errno));
		goto out;
	}
	if (st.st_uid != geteuid()) {
		err = -EPERM;
		buf_appendf(msg,
			    "cache directory %s belongs to uid %u, not to "
			    "spfs's user (uid %u): whoever owns it could "
			    "choose what spfs writes; use a directory of "
			    "this user's, or chown it",
			    b.data, (unsigned)st.st_uid, (unsigned)geteuid());
		goto out;
	}
	if ((st.st_mode & 077) && fchmod(fd, 0700) != 0) {
		err = -errno;
		buf_appendf(msg, "cache directory %s: cannot make it 0700: %s",
			    b.data, strerror(errno));
		goto out;
	}
	if (st.st_mode & 022)
		log_info("cache directory %s was writable by others (mode "
			 "%04o); now 0700",
			 b.data, (unsigned)(st.st_mode & 07777));
out:
	if (err && fd >= 0)
		close(fd);
	buf_release(&b);
	return err ? err : fd;
}

int cachedir_openat(int dirfd, const char *name, int flags)
{
	struct stat st;
	/* No O_TRUNC before the checks (a planted hard link to someone's
	 * file would be emptied), and no blocking open of a planted FIFO. */
	int fd = openat(
	    dirfd, name,
	    (flags & ~O_TRUNC) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);

	if (fd < 0) {
		int err = -errno;
		if (errno == ELOOP)
			log_error("cache file %s is a symbolic link: refusing "
				  "it (remove it)",
				  name);
		return err;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid()) {
		log_error("cache file %s is not a regular file of spfs's user: "
			  "refusing it (remove it)",
			  name);
		close(fd);
		return -EPERM;
	}
	if ((flags & O_TRUNC) && ftruncate(fd, 0) != 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}
