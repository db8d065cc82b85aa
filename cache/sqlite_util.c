/* SPDX-License-Identifier: MIT */
/* Shared sqlite plumbing for the cache's stores (see sqlite_util.h). */
#include "config.h"

#include "cache/sqlite_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

int cache_sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CANTOPEN:
		return -EACCES;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	default:
		return -EIO;
	}
}

/* A file the store writes must be a regular file of ours: a symlink or a
 * hard link planted in the cache directory would otherwise have spfs (often
 * root) write into someone else's file. */
static int own_regular_file(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_uid == geteuid() &&
	       st->st_nlink <= 1;
}

/* sqlite's side files must not be planted links either. */
static int check_side_files(const char *path, const char *what)
{
	static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
	char side[4096];
	struct stat st;

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if ((size_t)snprintf(side, sizeof(side), "%s%s", path,
				     suffixes[i]) >= sizeof(side))
			return -ENAMETOOLONG;
		if (lstat(side, &st) == 0 && !own_regular_file(&st)) {
			log_error("%s %s: not a regular file of spfs's user "
				  "(a link?); refusing it (remove it)",
				  what, side);
			return -EPERM;
		}
	}
	return 0;
}

int cache_sqlite_open(const char *path, const char *what, sqlite3 **db)
{
	int fd = open(
	    path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	struct stat st;
	int err;

	*db = NULL;
	if (fd < 0) {
		err = -errno;
		log_error("%s %s: %s", what, path,
			  errno == ELOOP ? "a symbolic link; refusing it "
					   "(remove it)"
					 : strerror(errno));
		return err;
	}
	err = fstat(fd, &st) != 0 ? -errno : own_regular_file(&st) ? 0 : -EPERM;
	close(fd);
	if (err == -EPERM)
		log_error("%s %s: not a regular file of spfs's user; refusing "
			  "it (remove it)",
			  what, path);
	err = err ? err : check_side_files(path, what);
	if (err)
		return err;
	err = cache_sqlite_errno(sqlite3_open_v2(path, db,
						 SQLITE_OPEN_READWRITE |
						     SQLITE_OPEN_FULLMUTEX |
						     SQLITE_OPEN_NOFOLLOW,
						 NULL));
	if (err) {
		log_error("%s %s: %s", what, path,
			  *db ? sqlite3_errmsg(*db) : "cannot open");
		return err;
	}
	sqlite3_busy_timeout(*db, 5000);
	return 0;
}

int cache_sqlite_exec(sqlite3 *db, const char *what, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		log_error("%s: %s", what, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
	}
	return cache_sqlite_errno(rc);
}

sqlite3_stmt *cache_sqlite_prepare(sqlite3 *db, const char *what,
				   const char *sql, int *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	*err = cache_sqlite_errno(rc);
	if (rc != SQLITE_OK)
		log_error("%s: %s", what, sqlite3_errmsg(db));
	return st;
}
