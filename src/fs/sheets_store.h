/* SPDX-License-Identifier: MIT */
#ifndef SPFS_FS_SHEETS_STORE_H
#define SPFS_FS_SHEETS_STORE_H

/*
 * A workbook's CSVs in the content store (for sheets_view.c): converting
 * a workbook version, and finding it converted. Keys, through the public
 * content store API only:
 *   item "<workbook item id>/sheets", version "<content version>/csv1";
 *   chunk 0: the manifest (the sheets' file names, sizes, failures);
 *   chunk (i + 1) << 32 | k: bytes [k MiB, (k + 1) MiB) of sheet i's CSV.
 * "csv1" names these conversion rules: a spfs that changes them changes
 * the suffix and converts again. The manifest is written last, so a
 * manifest means every CSV was stored (eviction may take chunks later:
 * a read that misses converts again).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs;
struct meta_item;

#define SV_CHUNK (1u << 20)

struct sv_sheet {
	char *name;    /* the CSV's file name, safe and unique */
	uint64_t size; /* bytes */
	char *why;     /* NULL, or why the converter refused this sheet */
	bool logged;   /* the refusal was logged in this mount */
	bool opened;   /* opened in this mount: the kernel may hold pages */
};

struct sv_book {
	char *key_item, *key_version;
	char *why;   /* NULL, or why the converter refused the workbook */
	bool logged; /* likewise */
	struct sv_sheet *sheets;
	size_t n;
};

/* The keys of a workbook version; 0 or -ENOMEM. */
int sv_book_keys(struct sv_book *b, const char *item_id, const char *version);
void sv_book_release(struct sv_book *b);

/* Fills b's sheets from the stored manifest of b's keys: 0, -ENOENT (not
 * stored, or unreadable), -errno. */
int sv_store_load(struct fs *fs, struct sv_book *b);

/* Converts workbook `it` (its current version, whose keys b holds) and
 * stores every CSV and the manifest. 0: b is filled (possibly with the
 * converter's refusal, which is stored too). Otherwise -errno, logged
 * once naming the workbook: a read or store failure worth retrying. */
int sv_store_convert(struct fs *fs, const struct meta_item *it,
		     struct sv_book *b);

/* n bytes of sheet i's CSV from off (within its size) under the keys of
 * a book. 0, -ENOENT (a chunk was evicted), -errno; *got: bytes copied. */
int sv_store_read(struct fs *fs, const char *key_item, const char *key_version,
		  size_t sheet, uint64_t off, char *buf, size_t n, size_t *got);

#endif
