/* SPDX-License-Identifier: MIT */
/*
 * Whole-file verification against SharePoint's quickXorHash. Every chunk's
 * fold is known once it was downloaded (or found in the store with its
 * checks); the XOR of all of them, with the length, is the file's hash, so
 * there is no second pass over the bytes.
 *
 * The rules when the hash does not match:
 *  - most files: the read that completed the file fails with EIO, with a
 *    line naming the file; the version's bytes leave memory and the store
 *    (never cached as verified) and the next open downloads them again;
 *  - Office files (SharePoint rewrites their properties on download, so
 *    their bytes and the listed hash may differ, PROTOCOL.md §5): download
 *    once more; a second mismatch is accepted, served and counted.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "base/qxh.h"
#include "cache/content.h"
#include "fs/reader_impl.h"
#include "fs/store_queue.h"

struct fold_sum {
	struct qxh h;
	uint64_t n;
	uint64_t nchunks;
};

static void add_fold(struct chunk *c, void *ctx)
{
	struct fold_sum *s = ctx;

	if (c->has_fold && c->idx < s->nchunks) {
		qxh_merge(&s->h, c->fold);
		s->n++;
	}
}

void verify_locked(struct reader *r, struct rfile *f)
{
	if (f->verify != 0 || f->dead || f->nfolds < f->nchunks ||
	    !f->size_confirmed)
		return;
	if (!f->qxh) {
		f->verify = 1; /* nothing to check against */
		return;
	}
	struct fold_sum s = {.nchunks = f->nchunks};
	qxh_init(&s.h);
	chunk_map_each(&f->chunks, add_fold, &s);
	if (s.n != f->nchunks)
		return; /* cannot happen: nfolds counts exactly these */
	s.h.length = f->size;
	char got[QXH_B64_LEN + 1];
	qxh_final_b64(&s.h, got);
	if (strcmp(got, f->qxh) == 0) {
		f->verify = 1;
		atomic_fetch_add(&r->hash_verified, 1);
		reader_store_file_row_locked(r, f);
		return;
	}
	f->mismatches++;
	atomic_fetch_add(&r->hash_mismatches, 1);
	if (!f->lenient) {
		log_warn("'%s' (item %s): the downloaded bytes do not match "
			 "SharePoint's quickXorHash; reads fail (EIO) and the "
			 "file is downloaded again when next opened",
			 f->name ? f->name : "?", f->item_id);
		/* Nothing of it stays: not the bytes, not the size. */
		reader_drop_version_locked(r, f, false);
		f->dead = -EIO;
		return;
	}
	if (f->mismatches == 1) {
		log_warn("'%s' (item %s): the downloaded bytes do not match "
			 "SharePoint's quickXorHash; downloading once more",
			 f->name ? f->name : "?", f->item_id);
		reader_drop_version_locked(r, f, true);
	} else {
		log_warn("'%s' (item %s): the bytes differ from SharePoint's "
			 "quickXorHash again; serving them as downloaded "
			 "(SharePoint rewrites Office files)",
			 f->name ? f->name : "?", f->item_id);
		f->verify = 2;
	}
	reader_store_file_row_locked(r, f);
}
