/* SPDX-License-Identifier: MIT */
/*
 * Legacy .xls (BIFF in a compound file) through libfreexl, in a child
 * process. libfreexl reads files only, holds a sheet's whole cell table
 * (rows x columns, up to 256 MiB), and turns date serials into text by
 * counting days one at a time, so a hostile .xls could take most of a
 * pod's memory or minutes of CPU inside the library, where no bound of
 * ours reaches. So the workbook is copied to an unnamed temporary file and
 * a forked child runs libfreexl, streaming the sheet names and CSV bytes
 * back through a pipe in frames. The parent watches the child's resident
 * memory while it waits and kills it past XLS_MEMORY_BUDGET more than it
 * started with: measured, a 5.6 KB .xls whose DIMENSIONS record claims
 * 65536 x 200 cells makes libfreexl take 206 MB. A plain RLIMIT_AS at that
 * budget would not do: libfreexl swallows the failed allocation and
 * reports the workbook as having no sheets (an empty folder, data lost
 * without a word); so RLIMIT_AS is only a backstop far above it, beside
 * RLIMIT_CPU. The parent also stops a child that goes quiet for
 * XLS_IDLE_SECONDS. A child that fails says why in its last frame; one
 * that dies says nothing and the parent names the cause.
 *
 * Frames: one type byte, a 32-bit little-endian length, the payload.
 *   'S' name     a worksheet's name, in workbook order
 *   'L'          end of the list
 *   'D' bytes    CSV of the current sheet
 *   'E'          the current sheet is complete
 *   'X' reason   the current sheet failed (-EBADMSG)
 *   'F' reason   the workbook failed (-EBADMSG); nothing follows
 * Sheets come in order; sheets_convert() on .xls must be called in order
 * (the view converts every sheet in order).
 *
 * libfreexl's values: numbers are written in our shortest form; its dates
 * ("YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS", "HH:MM:SS", from its own
 * date-format detection) get a 'T' between date and time. It reports no
 * formula results (such cells are empty), and booleans and errors as
 * 1/0 numbers: the format offers no more through this library.
 */
#include "config.h"

#include "sheets/xls.h"

#include <errno.h>
#include <fcntl.h>
#include <freexl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sheets/csv.h"
#include "sheets/number.h"

#define XLS_IDLE_SECONDS     60
#define XLS_CPU_SECONDS	     120
#define XLS_MEMORY_BUDGET    (128ull << 20)
#define XLS_ADDRESS_BACKSTOP (1ull << 30)
#define XLS_WATCH_MS	     20
#define FRAME_MAX	     (1u << 20)

#if defined(__SANITIZE_ADDRESS__)
#define SPFS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPFS_ASAN 1
#endif
#endif

struct xls_book {
	pid_t pid;
	int fd;		    /* the pipe's read end */
	uint64_t rss_limit; /* bytes of resident memory the child may reach */
	int oom;	    /* killed for passing it */
	char **names;
	size_t n;
	size_t next; /* the sheet whose frames come next */
	int broken;  /* the stream is unusable (the child died, timed out) */
	char *buf;   /* one frame's payload */
};

/* ---- the child ----------------------------------------------------------- */

struct child {
	int fd; /* the pipe's write end */
};

static void child_write(struct child *c, const void *p, size_t n)
{
	const char *s = p;

	while (n) {
		ssize_t k = write(c->fd, s, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			_exit(3); /* the parent went away */
		s += k;
		n -= (size_t)k;
	}
}

static void child_frame(struct child *c, char type, const void *p, size_t n)
{
	unsigned char h[5] = {(unsigned char)type, (unsigned char)n,
			      (unsigned char)(n >> 8), (unsigned char)(n >> 16),
			      (unsigned char)(n >> 24)};

	child_write(c, h, sizeof(h));
	if (n)
		child_write(c, p, n);
}

/* A reason frame: the text, and libfreexl's code when there is one. */
static void child_reason(struct child *c, char type, const char *what, int code)
{
	char why[200];
	int n = code ? snprintf(why, sizeof(why), "%s (libfreexl error %d)",
				what, code)
		     : snprintf(why, sizeof(why), "%s", what);

	child_frame(c, type, why, n > 0 ? (size_t)n : 0);
}

static const char *freexl_reason(int code)
{
	switch (code) {
	case FREEXL_INSUFFICIENT_MEMORY:
		return "a sheet larger than libfreexl will hold";
	case FREEXL_INVALID_CFBF_HEADER:
	case FREEXL_CFBF_INVALID_SIGNATURE:
	case FREEXL_CFBF_INVALID_SECTOR_SIZE:
	case FREEXL_CFBF_EMPTY_FAT_CHAIN:
	case FREEXL_CFBF_ILLEGAL_FAT_ENTRY:
	case FREEXL_CFBF_READ_ERROR:
	case FREEXL_CFBF_SEEK_ERROR:
	case FREEXL_INVALID_MINI_STREAM:
	case FREEXL_CFBF_ILLEGAL_MINI_FAT_ENTRY:
		return "a corrupt compound file";
	case FREEXL_BIFF_WORKBOOK_NOT_FOUND:
		return "a compound file without a workbook stream: an "
		       "encrypted (password-protected) workbook, or not a "
		       "spreadsheet";
	case FREEXL_CRAFTED_FILE:
		return "a workbook crafted to break readers";
	default:
		return "a corrupt .xls workbook";
	}
}

static int child_sink(void *ctx, const char *data, size_t len)
{
	child_frame(ctx, 'D', data, len);
	return 0;
}

/* One cell as CSV text; 0 length: no value. */
static size_t cell_text(const FreeXL_CellValue *v, char *tmp, const char **out,
			int *quote)
{
	*quote = 0;
	switch (v->type) {
	case FREEXL_CELL_INT:
		*out = tmp;
		return (size_t)snprintf(tmp, NUMBER_TEXT_MAX, "%d",
					v->value.int_value);
	case FREEXL_CELL_DOUBLE:
		*out = tmp;
		if (!isfinite(v->value.double_value))
			return 0;
		return number_format(v->value.double_value, tmp);
	case FREEXL_CELL_TEXT:
	case FREEXL_CELL_SST_TEXT:
		*quote = 1;
		*out = v->value.text_value ? v->value.text_value : "";
		return strlen(*out);
	case FREEXL_CELL_DATE:
	case FREEXL_CELL_TIME:
	case FREEXL_CELL_DATETIME: {
		const char *s = v->value.text_value ? v->value.text_value : "";
		size_t n = strlen(s);
		if (n >= NUMBER_TEXT_MAX)
			n = NUMBER_TEXT_MAX - 1;
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		char *sp = memchr(tmp, ' ', n);
		if (sp)
			*sp = 'T';
		*out = tmp;
		return n;
	}
	default:
		return 0;
	}
}

static void child_sheet(struct child *c, const void *h, unsigned short i)
{
	unsigned int rows = 0;
	unsigned short cols = 0;
	int rc = freexl_select_active_worksheet(h, i);
	char tmp[NUMBER_TEXT_MAX];

	if (rc == FREEXL_OK)
		rc = freexl_worksheet_dimensions(h, &rows, &cols);
	if (rc != FREEXL_OK) {
		child_reason(c, 'X', freexl_reason(rc), rc);
		return;
	}
	/* The width: the last column holding a value. */
	long width = 0;
	for (unsigned int r = 0; r < rows; r++)
		for (unsigned short k = (unsigned short)width; k < cols; k++) {
			FreeXL_CellValue v;
			const char *s;
			int q;
			if (freexl_get_cell_value(h, r, k, &v) == FREEXL_OK &&
			    cell_text(&v, tmp, &s, &q))
				width = (long)k + 1;
		}
	struct csv *w = malloc(sizeof(*w));
	if (!w)
		_exit(4);
	csv_init(w, (uint32_t)width, child_sink, c);
	for (unsigned int r = 0; r < rows && width; r++)
		for (unsigned short k = 0; k < width; k++) {
			FreeXL_CellValue v;
			const char *s;
			int q;
			size_t n;
			if (freexl_get_cell_value(h, r, k, &v) != FREEXL_OK)
				continue;
			n = cell_text(&v, tmp, &s, &q);
			if (n)
				csv_cell(w, r, k, s, n, q);
		}
	csv_finish(w);
	free(w);
	child_frame(c, 'E', NULL, 0);
}

/* What the child may add: its inherited address space plus a budget. */
static void child_limits(void)
{
	struct rlimit cpu = {XLS_CPU_SECONDS, XLS_CPU_SECONDS + 5};

	setrlimit(RLIMIT_CPU, &cpu);
#ifndef SPFS_ASAN
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long long pages = 0;
	if (f) {
		if (fscanf(f, "%llu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	if (pages) {
		unsigned long long base =
		    pages * (unsigned long long)sysconf(_SC_PAGESIZE);
		struct rlimit as = {base + XLS_ADDRESS_BACKSTOP,
				    base + XLS_ADDRESS_BACKSTOP};
		setrlimit(RLIMIT_AS, &as);
	}
#endif
}

static void child_main(int out, int file)
{
	struct child c = {out};
	const void *h = NULL;
	char path[64];
	unsigned int info = 0;

	/* The daemon's handlers (FUSE's SIGTERM, SIGPIPE ignored) are not
	 * the child's: a signal ends it, a closed pipe too. */
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	child_limits();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", file);
	int rc = freexl_open(path, &h);
	if (rc != FREEXL_OK) {
		child_reason(&c, 'F', freexl_reason(rc), rc);
		_exit(0);
	}
	if (freexl_get_info(h, FREEXL_BIFF_PASSWORD, &info) == FREEXL_OK &&
	    info != FREEXL_BIFF_PLAIN) {
		child_reason(&c, 'F',
			     "a password-protected (encrypted) workbook", 0);
		_exit(0);
	}
	if (freexl_get_info(h, FREEXL_BIFF_SHEET_COUNT, &info) != FREEXL_OK)
		info = 0;
	for (unsigned int i = 0; i < info && i < 65535; i++) {
		const char *name = NULL;
		if (freexl_get_worksheet_name(h, (unsigned short)i, &name) !=
		    FREEXL_OK)
			name = "";
		child_frame(&c, 'S', name ? name : "", name ? strlen(name) : 0);
	}
	child_frame(&c, 'L', NULL, 0);
	for (unsigned int i = 0; i < info && i < 65535; i++)
		child_sheet(&c, h, (unsigned short)i);
	freexl_close(h);
	_exit(0);
}

/* ---- the parent ------------------------------------------------------------
 */

/* Resident bytes of a process, 0 when unknown. */
static uint64_t resident(pid_t pid)
{
	char path[64];
	unsigned long long size = 0, rss = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Reads exactly n bytes, waiting at most XLS_IDLE_SECONDS for each piece
 * and killing the child when its memory passes the budget. 0, -ETIMEDOUT,
 * -ENOMEM (killed), -EPIPE (the child ended early), -errno. */
static int read_full(struct xls_book *b, void *p, size_t n)
{
	char *s = p;
	int waited = 0;

	while (n) {
		struct pollfd pfd = {b->fd, POLLIN, 0};
		int rc = poll(&pfd, 1, XLS_WATCH_MS);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (rc == 0) {
			if (b->rss_limit && resident(b->pid) > b->rss_limit) {
				kill(b->pid, SIGKILL);
				b->oom = 1;
				return -ENOMEM;
			}
			waited += XLS_WATCH_MS;
			if (waited >= XLS_IDLE_SECONDS * 1000)
				return -ETIMEDOUT;
			continue;
		}
		ssize_t k = read(b->fd, s, n);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -EPIPE;
		s += k;
		n -= (size_t)k;
		waited = 0;
	}
	return 0;
}

/* Ends the child (if still running) and says how it ended. */
static void reap(struct xls_book *b, int *status)
{
	*status = 0;
	if (b->pid <= 0)
		return;
	if (b->fd >= 0) {
		close(b->fd);
		b->fd = -1;
	}
	kill(b->pid, SIGKILL);
	while (waitpid(b->pid, status, 0) < 0 && errno == EINTR)
		;
	b->pid = 0;
}

/* The stream broke: say why once (the child's fate when it died). */
static int stream_failed(struct xls_book *b, int err, struct sheets_error *e)
{
	int status = 0;
	pid_t pid = b->pid;

	b->broken = 1;
	if (err == -ENOMEM && b->oom) {
		reap(b, &status);
		return sheets_fail(
		    e, -EBADMSG,
		    "a sheet for which libfreexl needs more than "
		    "%llu MiB (stopped)",
		    (unsigned long long)(XLS_MEMORY_BUDGET >> 20));
	}
	if (err == -ETIMEDOUT) {
		/* Wall time: a loaded machine, not only a hostile file, so
		 * worth another try later (not -EBADMSG). */
		reap(b, &status);
		return sheets_fail(e, -ETIMEDOUT,
				   "libfreexl made no progress for %d s "
				   "(stopped)",
				   XLS_IDLE_SECONDS);
	}
	if (err == -EPIPE && pid > 0) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		b->pid = 0;
		if (WIFSIGNALED(status))
			return sheets_fail(
			    e, -EBADMSG, "libfreexl died with signal %d (%s)",
			    WTERMSIG(status),
			    WTERMSIG(status) == SIGXCPU
				? "more than its CPU time"
			    : WTERMSIG(status) == SIGSEGV ||
				    WTERMSIG(status) == SIGABRT
				? "a crash or more than its memory"
				: "killed");
		return sheets_fail(
		    e, -EBADMSG, "libfreexl ended early (exit %d)",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	return sheets_fail(e, err, "reading from libfreexl: %s",
			   strerror(-err));
}

/* One frame into b->buf; its type in *type, length in *len. */
static int read_frame(struct xls_book *b, char *type, size_t *len,
		      struct sheets_error *e)
{
	unsigned char h[5];
	int err;

	if (b->broken)
		return sheets_fail(e, -EIO, "the .xls reader failed before");
	err = read_full(b, h, sizeof(h));
	if (err)
		return stream_failed(b, err, e);
	*type = (char)h[0];
	*len = (size_t)h[1] | (size_t)h[2] << 8 | (size_t)h[3] << 16 |
	       (size_t)h[4] << 24;
	if (*len > FRAME_MAX) {
		b->broken = 1;
		return sheets_fail(e, -EIO,
				   "a frame of %zu bytes from the "
				   ".xls reader",
				   *len);
	}
	err = read_full(b, b->buf, *len);
	if (err)
		return stream_failed(b, err, e);
	b->buf[*len] = '\0';
	return 0;
}

/* The workbook in an unnamed temporary file (libfreexl opens a path; the
 * child opens /proc/self/fd/N). */
static int copy_to_tmp(const struct sheets_input *in, const char *dir,
		       struct sheets_error *e)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	char *buf = NULL;
	int err = 0;

	if (fd < 0) {
		/* A filesystem without O_TMPFILE: a named file, unlinked. */
		char path[4096];
		snprintf(path, sizeof(path), "%s/spfs-xls-XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return sheets_fail(e, -errno, "a temporary file in %s: %s", dir,
				   strerror(errno));
	buf = malloc(1u << 20);
	if (!buf) {
		err = sheets_fail(e, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t off = 0; off < in->size;) {
		size_t n = in->size - off < (1u << 20)
			       ? (size_t)(in->size - off)
			       : (1u << 20);
		err = in->read_at(in->ctx, buf, n, off);
		if (err) {
			sheets_fail(e, err,
				    "the workbook could not be read: %s",
				    strerror(-err));
			goto out;
		}
		for (size_t w = 0; w < n;) {
			ssize_t k =
			    pwrite(fd, buf + w, n - w, (off_t)(off + w));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				err = sheets_fail(e, -errno,
						  "a temporary file in %s: %s",
						  dir, strerror(errno));
				goto out;
			}
			w += (size_t)k;
		}
		off += n;
	}
out:
	free(buf);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

struct xls_book *xls_open(const struct sheets_input *in,
			  const struct sheets_limits *lim,
			  struct sheets_error *e)
{
	struct xls_book *b = calloc(1, sizeof(*b));
	int pipefd[2] = {-1, -1}, file = -1;
	char type;
	size_t len;

	if (!b || !(b->buf = malloc(FRAME_MAX + 1))) {
		free(b);
		sheets_fail(e, -ENOMEM, "out of memory");
		return NULL;
	}
	b->fd = -1;
	file = copy_to_tmp(in, lim->tmp_dir, e);
	if (file < 0)
		goto fail;
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		sheets_fail(e, -errno, "pipe: %s", strerror(errno));
		goto fail;
	}
	b->pid = fork();
	if (b->pid < 0) {
		sheets_fail(e, -errno, "fork: %s", strerror(errno));
		b->pid = 0;
		goto fail;
	}
	if (b->pid == 0) {
		close(pipefd[0]);
		child_main(pipefd[1], file);
	}
	/* The child starts with our resident pages (shared until written). */
	uint64_t base = resident(getpid());
	b->rss_limit = base ? base + XLS_MEMORY_BUDGET : 0;
	close(pipefd[1]);
	pipefd[1] = -1;
	close(file);
	file = -1;
	b->fd = pipefd[0];
	for (;;) {
		if (read_frame(b, &type, &len, e))
			goto fail;
		if (type == 'L')
			break;
		if (type == 'F') {
			sheets_fail(e, -EBADMSG, "%s", b->buf);
			goto fail;
		}
		if (type != 'S') {
			sheets_fail(e, -EIO,
				    "an unexpected frame from the "
				    ".xls reader");
			goto fail;
		}
		char **p = realloc(b->names, (b->n + 1) * sizeof(*p));
		if (!p || !(p[b->n] = strdup(b->buf))) {
			if (p)
				b->names = p;
			sheets_fail(e, -ENOMEM, "out of memory");
			goto fail;
		}
		b->names = p;
		b->n++;
		if (b->n > lim->sheets_max) {
			sheets_fail(e, -EBADMSG, "more than %u sheets",
				    lim->sheets_max);
			goto fail;
		}
	}
	return b;
fail:
	if (file >= 0)
		close(file);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (b->fd < 0 && pipefd[0] >= 0)
		close(pipefd[0]);
	xls_close(b);
	return NULL;
}

void xls_close(struct xls_book *b)
{
	int status;

	if (!b)
		return;
	reap(b, &status);
	if (b->fd >= 0)
		close(b->fd);
	for (size_t i = 0; i < b->n; i++)
		free(b->names[i]);
	free(b->names);
	free(b->buf);
	free(b);
}

size_t xls_count(const struct xls_book *b)
{
	return b->n;
}

const char *xls_name(const struct xls_book *b, size_t i)
{
	return b->names[i];
}

int xls_convert(struct xls_book *b, size_t i, sheets_sink_fn sink, void *ctx,
		struct sheets_error *e)
{
	char type;
	size_t len;
	int err;

	if (i < b->next)
		return sheets_fail(e, -EINVAL,
				   ".xls sheets are converted in order");
	while (b->next <= i) {
		err = read_frame(b, &type, &len, e);
		if (err)
			return err;
		if (type == 'D') {
			if (b->next < i)
				continue; /* a sheet nobody asked for */
			err = sink(ctx, b->buf, len);
			if (err)
				return sheets_fail(e, err,
						   "writing the CSV: %s",
						   strerror(-err));
			continue;
		}
		if (type != 'E' && type != 'X') {
			b->broken = 1;
			return sheets_fail(e, -EIO,
					   "an unexpected frame from "
					   "the .xls reader");
		}
		if (b->next++ < i)
			continue;
		if (type == 'X')
			return sheets_fail(e, -EBADMSG, "sheet %zu: %s", i + 1,
					   b->buf);
	}
	return 0;
}
