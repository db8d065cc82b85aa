/* SPDX-License-Identifier: MIT */
/*
 * Test driver for the sheet converter (src/sheets) without a mount: lists
 * a workbook's sheets, or writes one sheet's CSV to stdout, from a local
 * file. The integration tests and the benchmark use it to check the
 * converter apart from FUSE and to time it alone.
 *
 *   sheetconv FILE            one line per sheet: its name
 *   sheetconv FILE N          sheet N (1-based) as CSV on stdout
 *   sheetconv FILE all DIR    every sheet into DIR/1.csv, DIR/2.csv, ...
 * Exit 0, or 1 with the reason on stderr (as spfs would log it).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sheets/sheets.h"

static int read_at(void *ctx, void *buf, size_t n, uint64_t off)
{
	int fd = *(int *)ctx;

	while (n) {
		ssize_t k = pread(fd, buf, n, (off_t)off);
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		buf = (char *)buf + k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static int sink(void *ctx, const char *data, size_t len)
{
	FILE *f = ctx;

	return fwrite(data, 1, len, f) == len ? 0 : -EIO;
}

static int rewind_out(void *ctx)
{
	FILE *f = ctx;

	if (fflush(f) != 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    ftruncate(fileno(f), 0) != 0)
		return -EIO;
	return 0;
}

int main(int argc, char **argv)
{
	struct sheets_error e = {0};
	struct stat st;
	int rc = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: sheetconv FILE [N | all DIR]\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) != 0) {
		perror(argv[1]);
		return 2;
	}
	struct sheets_input in = {(uint64_t)st.st_size, read_at, &fd};
	struct sheets_limits lim = {.tmp_dir = getenv("TMPDIR")};
	struct sheets_book *b = sheets_open(&in, &lim, &e);
	if (!b)
		goto out;
	if (argc == 2) {
		for (size_t i = 0; i < sheets_count(b); i++)
			printf("%s\n", sheets_name(b, i));
		rc = 0;
	} else if (strcmp(argv[2], "all") == 0 && argc == 4) {
		rc = 0;
		for (size_t i = 0; i < sheets_count(b) && !rc; i++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%zu.csv", argv[3],
				 i + 1);
			FILE *f = fopen(path, "w+");
			if (!f) {
				perror(path);
				rc = 2;
				break;
			}
			if (sheets_convert(b, i, sink, rewind_out, f, &e) != 0)
				rc = 1;
			if (fclose(f) != 0)
				rc = 2;
		}
	} else {
		long n = strtol(argv[2], NULL, 10);
		if (n < 1 || (size_t)n > sheets_count(b)) {
			fprintf(stderr, "no sheet %ld\n", n);
			rc = 2;
		} else {
			/* stdout may be a pipe: a rewind needs a file. */
			FILE *tmp = tmpfile();
			char buf[65536];
			size_t k;
			if (tmp && sheets_convert(b, (size_t)n - 1, sink,
						  rewind_out, tmp, &e) == 0) {
				rewind(tmp);
				while ((k = fread(buf, 1, sizeof(buf), tmp)))
					fwrite(buf, 1, k, stdout);
				rc = 0;
			}
			if (tmp)
				fclose(tmp);
		}
	}
out:
	if (e.code)
		fprintf(stderr, "sheetconv: %s: %s (%s)\n", argv[1], e.why,
			strerror(-e.code));
	sheets_close(b);
	close(fd);
	return rc;
}
