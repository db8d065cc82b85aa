/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CACHE_SQLITE_UTIL_H
#define SPFS_CACHE_SQLITE_UTIL_H

/*
 * What the cache's sqlite stores share: opening a private database file, and
 * the one place sqlite result codes become errno. Internal to cache/.
 */

#include <sqlite3.h>

/* sqlite result code -> 0 or negative errno (FULL -> ENOSPC, ...). */
int cache_sqlite_errno(int rc);

/* Creates path 0600 if needed (before sqlite can create it wider), opens it
 * serialised with a busy timeout. The file and its side files (-wal, -shm,
 * -journal) must be regular files of the effective user, never links
 * (-EPERM, -ELOOP, logged): a link planted in the cache directory would
 * have spfs write someone else's file. *db is set even on failure (close
 * it). what names the store in log lines. 0 or -errno. */
int cache_sqlite_open(const char *path, const char *what, sqlite3 **db);

/* Runs SQL, logging sqlite's message on failure. 0 or -errno. */
int cache_sqlite_exec(sqlite3 *db, const char *what, const char *sql);

/* Prepares one statement, logging on failure (*err set). */
sqlite3_stmt *cache_sqlite_prepare(sqlite3 *db, const char *what,
				   const char *sql, int *err);

#endif
