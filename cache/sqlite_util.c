/* SPDX-License-Identifier: MIT */
/* Shared sqlite plumbing for the cache's stores (see sqlite_util.h). */
#include "config.h"

#include "cache/sqlite_util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
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

int cache_sqlite_open(const char *path, const char *what, sqlite3 **db)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int err;

	*db = NULL;
	if (fd < 0) {
		err = -errno;
		log_error("%s %s: %s", what, path, strerror(errno));
		return err;
	}
	close(fd);
	err = cache_sqlite_errno(sqlite3_open_v2(
	    path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL));
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
