/* SPDX-License-Identifier: MIT */
#ifndef SPFS_OPTIONS_H
#define SPFS_OPTIONS_H

/*
 * The command line: `spfs [options] SOURCE MOUNTPOINT`, `spfs --check
 * [SOURCE]`, with mount-style `-o key=value,...` options. Parsing never
 * touches the network or the environment; auth_config_resolve() does the
 * environment afterwards.
 */

#include <stdbool.h>
#include <stdio.h>

#include "auth/auth.h"
#include "base/buf.h"
#include "base/log.h"

struct options {
	bool help;
	bool version;
	bool check;
	bool foreground;
	bool debug;
	char *source;		       /* owned */
	char *mountpoint;	       /* owned */
	char *cafile;		       /* owned; -o cafile= */
	char *cache_dir;	       /* owned; NULL = the default */
	char *metrics;		       /* owned; -o metrics=HOST:PORT */
	char *log_file;		       /* owned; -o log_file=PATH */
	double poll_interval;	       /* seconds, default 30 */
	bool cache_off;		       /* -o cache=off: stream, store nothing */
	bool sheets;		       /* -o sheets: workbooks as CSV folders */
	unsigned long long cache_size; /* bytes; 0 = 10% of the disk, >= 1 GiB
					*/
	unsigned long long chunk_size; /* bytes, default 4 MiB */
	unsigned long long readahead;  /* bytes, default 16 MiB */
	unsigned long long small_file; /* bytes, default 4 MiB */
	double read_timeout;	 /* seconds a read may wait for the service */
	double liveness_timeout; /* seconds before /healthz calls it wedged */
	double attr_timeout;	 /* kernel caching, default = poll_interval */
	double entry_timeout;
	bool allow_other;
	bool default_permissions; /* also set by allow_other, uid, gid, umask */
	long uid, gid;		  /* -1 = the mounting user */
	long umask;		  /* -1 = 022 */
	enum log_level log_level;
	enum log_format log_format;
	struct auth_config auth; /* auth.* strings owned */
};

/* "64K", "4M", "1G", "123": bytes. 0 or -EINVAL. */
int options_parse_size(const char *s, unsigned long long *out);

void options_init(struct options *o);
void options_release(struct options *o);

/*
 * Parses argv. Returns 0, or -EINVAL with one line in *msg saying what is
 * wrong and how to fix it (unknown option, missing value, a secret on the
 * command line), or -ENOMEM.
 */
int options_parse(struct options *o, int argc, char **argv, struct buf *msg);

/* Prints the usage text (the truth about what this build does). */
void options_usage(FILE *out);

#endif
