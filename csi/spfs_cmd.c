/* SPDX-License-Identifier: MIT */
/*
 * Builds spfs's argv and reads --check's report. The report is spfs's
 * human output (src/check.c); the markers read here ("access token:
 * FAILED", "  FAILED: ", "HTTP 403", "AADSTS") are the ones it prints, and
 * the integration tests run the real thing, so a change there shows.
 */
#include "config.h"

#include "csi/spfs_cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int spfs_cmd_build(struct spfs_cmd *c, const char *spfs, bool check,
		   const struct csi_volume *v, const struct spfs_cmd_files *f,
		   const char *global_opts)
{
	struct buf o;
	int n = 0, err;

	memset(c, 0, sizeof(*c));
	buf_init(&o, 16384);
	err = buf_appendf(&o, "%s%s%s%s", global_opts ? global_opts : "",
			  global_opts && *global_opts ? "," : "",
			  v->options ? v->options : "",
			  v->options && *v->options ? "," : "");
	err = err ? err
		  : buf_appendf(&o,
				"auth=workload,client_id=%s,tenant_id=%s,"
				"token_file=%s,cache_dir=%s,allow_other",
				v->client_id, v->tenant_id, f->token_file,
				f->cache_dir);
	if (err) {
		buf_release(&o);
		return err;
	}
	c->opts = buf_detach(&o, NULL);
	buf_release(&o);
	if (!c->opts)
		return -ENOMEM;
	c->argv[n++] = (char *)spfs;
	if (check) {
		c->argv[n++] = "--check";
		c->argv[n++] = v->source;
	} else {
		c->argv[n++] = "-f";
		c->argv[n++] = v->source;
		c->argv[n++] = (char *)f->mnt;
	}
	c->argv[n++] = "-o";
	c->argv[n++] = c->opts;
	c->argv[n] = NULL;
	return 0;
}

void spfs_cmd_release(struct spfs_cmd *c)
{
	free(c->opts);
	memset(c, 0, sizeof(*c));
}

/* Appends line (up to its newline, leading blanks skipped) to msg. */
static void append_line(struct buf *msg, const char *line)
{
	while (*line == ' ' || *line == '\t')
		line++;
	buf_appendf(msg, "%.*s", (int)strcspn(line, "\r\n"), line);
}

/* The line after the one at p, or NULL. */
static const char *next_line(const char *p)
{
	p = strchr(p, '\n');
	return p && p[1] ? p + 1 : NULL;
}

static bool line_has(const char *line, const char *what)
{
	size_t n = strcspn(line, "\n");
	size_t w = strlen(what);

	for (size_t i = 0; i + w <= n; i++)
		if (memcmp(line + i, what, w) == 0)
			return true;
	return false;
}

enum csi_code spfs_check_explain(int status, const char *report,
				 struct buf *msg)
{
	const char *p;

	if (status == 2) {
		/* A usage error: spfs says which option and why. */
		p = strstr(report, "spfs: ");
		append_line(msg, p ? p + 6 : report);
		return CSI_INVALID_ARGUMENT;
	}
	p = strstr(report, "access token: FAILED");
	if (p) {
		const char *why = next_line(p);
		append_line(msg, why ? why : p);
		return why && line_has(why, "AADSTS") ? CSI_PERMISSION_DENIED
						      : CSI_UNAVAILABLE;
	}
	p = strstr(report, "  FAILED: ");
	if (p) {
		append_line(msg, p + 10);
		if (line_has(p, "HTTP 403") || line_has(p, "access denied"))
			return CSI_PERMISSION_DENIED;
		if (line_has(p, "not found"))
			return CSI_NOT_FOUND;
		return CSI_UNAVAILABLE;
	}
	/* Whatever else spfs logged as an error ("result: FAILED" after a
	 * credential it could not set up; or its report never came, when it
	 * was killed), or its last words. An Entra refusal it logged is still
	 * a refusal. */
	size_t from = msg->len;
	spfs_log_explain(report, msg);
	if (strstr(msg->data ? msg->data + from : "", "AADSTS"))
		return CSI_PERMISSION_DENIED;
	if (strstr(report, "result: FAILED"))
		return CSI_UNAVAILABLE;
	return status < 0 || status > 128 ? CSI_DEADLINE_EXCEEDED : CSI_UNKNOWN;
}

void spfs_log_explain(const char *log, struct buf *msg)
{
	const char *last_error = NULL, *last = NULL;

	for (const char *p = log; p && *p; p = next_line(p)) {
		if (strspn(p, " \t\r\n") == strcspn(p, "\n"))
			continue; /* blank */
		last = p;
		if (line_has(p, " error: "))
			last_error = p;
	}
	if (last_error) {
		size_t n = strcspn(last_error, "\n");
		const char *e = last_error;
		for (size_t i = 0; i + 8 <= n; i++)
			if (memcmp(last_error + i, " error: ", 8) == 0) {
				e = last_error + i + 8;
				break;
			}
		append_line(msg, e);
	} else if (last) {
		append_line(msg, last);
	} else {
		buf_appendf(msg, "spfs printed nothing");
	}
}
