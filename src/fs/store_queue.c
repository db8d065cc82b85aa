/* SPDX-License-Identifier: MIT */
/*
 * The store queue (store_queue.h): a FIFO of operations drained by one
 * thread. Consecutive chunks become one content_put (one transaction) up
 * to batch_bytes; every other operation runs alone, in order. When idle
 * for a while the thread lets the store write its LRU marks.
 *
 * Every pushed chunk gets exactly one `done` call, on the queue's thread:
 * chunks discarded by a drop are answered as not stored on the thread's
 * next turn (the dropper may hold locks that `done` takes).
 */
#include "config.h"

#include "fs/store_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "cache/content.h"
#include "fs/budget.h"

#define IDLE_FLUSH_S 5

enum op { OP_CHUNK, OP_DROP_ITEM, OP_DROP_VERSION, OP_FILE_ROW };

struct entry {
	struct entry *next;
	enum op op;
	char *item_id;
	char *version; /* the kept version for OP_DROP_ITEM (may be NULL) */
	uint64_t index;
	struct chunk_buf *buf;
	int stored; /* OP_CHUNK, after its batch ran */
	struct content_file row;
};

struct store_queue {
	struct content *store;
	struct store_queue_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t work; /* entries queued, or stop */
	pthread_cond_t idle; /* an operation finished (flush waiters) */
	struct entry *head, *tail;
	struct entry *discarded; /* chunks a drop took off the queue */
	uint64_t queued_bytes;
	uint64_t pushed, finished; /* operations, for flush */
	bool stop, running, dirty;
	pthread_t thread;
	int last_err; /* the last failure logged, so a streak logs once */
	atomic_uint_fast64_t stored, skipped_full, failed, transactions;
};

static void entry_free(struct entry *e)
{
	chunk_buf_unref(e->buf);
	free(e->item_id);
	free(e->version);
	free(e);
}

static struct entry *entry_new(enum op op, const char *item_id,
			       const char *version)
{
	struct entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->op = op;
	e->item_id = strdup(item_id);
	e->version = version ? strdup(version) : NULL;
	if (!e->item_id || (version && !e->version)) {
		entry_free(e);
		return NULL;
	}
	return e;
}

static void append_locked(struct store_queue *q, struct entry *e)
{
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	q->pushed++;
	pthread_cond_signal(&q->work);
}

struct store_queue *store_queue_new(struct content *store,
				    const struct store_queue_config *cfg)
{
	struct store_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->store = store;
	q->cfg = *cfg;
	if (!q->cfg.batch_bytes)
		q->cfg.batch_bytes = 8u << 20;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->idle, NULL);
	return q;
}

bool store_queue_push(struct store_queue *q, const char *item_id,
		      const char *version, uint64_t index,
		      struct chunk_buf *buf)
{
	struct entry *e;

	pthread_mutex_lock(&q->lock);
	if (q->queued_bytes && q->queued_bytes + buf->len > q->cfg.max_bytes) {
		pthread_mutex_unlock(&q->lock);
		atomic_fetch_add(&q->skipped_full, 1);
		return false;
	}
	pthread_mutex_unlock(&q->lock);
	e = entry_new(OP_CHUNK, item_id, version);
	if (!e)
		return false;
	e->index = index;
	e->buf = chunk_buf_ref(buf);
	pthread_mutex_lock(&q->lock);
	q->queued_bytes += buf->len;
	append_locked(q, e);
	pthread_mutex_unlock(&q->lock);
	return true;
}

/* Takes queued chunks of item_id off the queue: of version only (when set),
 * or of every version but keep. Their `done` comes on the next turn. */
static void discard_locked(struct store_queue *q, const char *item_id,
			   const char *version, const char *keep)
{
	struct entry **pp = &q->head, *last = NULL;

	while (*pp) {
		struct entry *e = *pp;
		bool match = e->op == OP_CHUNK &&
			     strcmp(e->item_id, item_id) == 0 &&
			     (version ? strcmp(e->version, version) == 0
				      : !keep || strcmp(e->version, keep) != 0);
		if (!match) {
			last = e;
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		q->queued_bytes -= e->buf->len;
		q->finished++;
		e->next = q->discarded;
		q->discarded = e;
	}
	q->tail = last;
	if (q->discarded)
		pthread_cond_signal(&q->work);
}

static void push_control(struct store_queue *q, struct entry *e)
{
	if (!e) {
		log_warn("content cache: out of memory queueing a change");
		return;
	}
	pthread_mutex_lock(&q->lock);
	if (e->op == OP_DROP_ITEM)
		discard_locked(q, e->item_id, NULL, e->version);
	else if (e->op == OP_DROP_VERSION)
		discard_locked(q, e->item_id, e->version, NULL);
	append_locked(q, e);
	pthread_mutex_unlock(&q->lock);
}

void store_queue_drop_item(struct store_queue *q, const char *item_id,
			   const char *keep_version)
{
	push_control(q, entry_new(OP_DROP_ITEM, item_id, keep_version));
}

void store_queue_drop_version(struct store_queue *q, const char *item_id,
			      const char *version, bool keep_row)
{
	struct entry *e = entry_new(OP_DROP_VERSION, item_id, version);

	if (e)
		e->stored = keep_row; /* the flag rides in an unused field */
	push_control(q, e);
}

void store_queue_file_row(struct store_queue *q, const char *item_id,
			  const char *version, const struct content_file *row)
{
	struct entry *e = entry_new(OP_FILE_ROW, item_id, version);

	if (e)
		e->row = *row;
	push_control(q, e);
}

static void report(struct store_queue *q, int err)
{
	if (err == q->last_err)
		return;
	q->last_err = err;
	if (!err)
		log_info("content cache: storing again");
	else if (err == -ENOSPC)
		log_warn("content cache: cannot store: the volume is full; "
			 "reads are served from memory, unstored");
	else
		log_warn("content cache: cannot store (%s); reads are served "
			 "from memory, unstored",
			 strerror(-err));
}

/* Runs one batch (no lock held); its entries then get their `done`. */
static void run(struct store_queue *q, struct entry *batch, size_t n)
{
	int err = 0;

	if (batch->op == OP_CHUNK) {
		struct content_chunk *k = calloc(n, sizeof(*k));
		size_t i = 0;
		if (!k) {
			err = -ENOMEM;
		} else {
			for (struct entry *e = batch; e; e = e->next, i++)
				k[i] = (struct content_chunk){
				    .item_id = e->item_id,
				    .version = e->version,
				    .index = e->index,
				    .data = e->buf->data,
				    .len = e->buf->len,
				    .folds = e->buf->folds};
			int rc = content_put(q->store, k, n);
			err = rc < 0 ? rc : 0;
			i = 0;
			for (struct entry *e = batch; e; e = e->next, i++)
				e->stored = rc >= 0 && k[i].stored;
			free(k);
		}
		atomic_fetch_add(&q->transactions, 1);
		report(q, err); /* a streak of failed chunks is said once */
		return;
	}
	if (batch->op == OP_DROP_ITEM)
		err =
		    content_drop_item(q->store, batch->item_id, batch->version);
	else if (batch->op == OP_DROP_VERSION)
		err = content_drop_version(q->store, batch->item_id,
					   batch->version, batch->stored);
	else
		err = content_file_set(q->store, batch->item_id, batch->version,
				       &batch->row);
	/* A full volume is the chunks' streak to report; other failures of
	 * bookkeeping are rare and said as they come. */
	if (err && err != -ENOSPC)
		log_warn("content cache: %s of item %s failed: %s",
			 batch->op == OP_FILE_ROW ? "recording a file"
						  : "dropping versions",
			 batch->item_id, strerror(-err));
}

static void answer(struct store_queue *q, struct entry *list)
{
	while (list) {
		struct entry *e = list;
		list = e->next;
		if (e->op == OP_CHUNK) {
			atomic_fetch_add(e->stored ? &q->stored : &q->failed,
					 1);
			if (q->cfg.done)
				q->cfg.done(q->cfg.ctx, e->item_id, e->version,
					    e->index, e->buf, e->stored);
		}
		entry_free(e);
	}
}

static void *thread_main(void *arg)
{
	struct store_queue *q = arg;

	pthread_setname_np(pthread_self(), "spfs-store");
	pthread_mutex_lock(&q->lock);
	for (;;) {
		if (q->discarded) {
			struct entry *d = q->discarded;
			q->discarded = NULL;
			pthread_mutex_unlock(&q->lock);
			answer(q, d);
			pthread_mutex_lock(&q->lock);
			pthread_cond_broadcast(&q->idle);
			continue;
		}
		if (!q->head) {
			if (q->stop)
				break;
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += IDLE_FLUSH_S;
			if (pthread_cond_timedwait(&q->work, &q->lock,
						   &until) != 0 &&
			    q->dirty && !q->head) {
				/* Quiet: write the LRU marks readers left. */
				q->dirty = false;
				pthread_mutex_unlock(&q->lock);
				content_evict(q->store);
				pthread_mutex_lock(&q->lock);
			}
			continue;
		}
		/* Consecutive chunks up to batch_bytes, or one operation. */
		struct entry *batch = q->head, *e = batch;
		uint64_t bytes = e->op == OP_CHUNK ? e->buf->len : 0;
		size_t n = 1;
		while (e->op == OP_CHUNK && e->next &&
		       e->next->op == OP_CHUNK &&
		       bytes + e->next->buf->len <= q->cfg.batch_bytes) {
			e = e->next;
			bytes += e->buf->len;
			n++;
		}
		q->head = e->next;
		if (!q->head)
			q->tail = NULL;
		e->next = NULL;
		q->dirty = true;
		pthread_mutex_unlock(&q->lock);
		run(q, batch, n);
		pthread_mutex_lock(&q->lock);
		q->queued_bytes -= bytes;
		pthread_mutex_unlock(&q->lock);
		answer(q, batch);
		pthread_mutex_lock(&q->lock);
		q->finished += n;
		pthread_cond_broadcast(&q->idle);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int store_queue_start(struct store_queue *q)
{
	if (q->running)
		return 0;
	int rc = pthread_create(&q->thread, NULL, thread_main, q);
	if (rc)
		return -rc;
	q->running = true;
	return 0;
}

void store_queue_flush(struct store_queue *q)
{
	pthread_mutex_lock(&q->lock);
	uint64_t target = q->pushed;
	while (q->running && (q->finished < target || q->discarded))
		pthread_cond_wait(&q->idle, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

void store_queue_free(struct store_queue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
	if (q->running)
		pthread_join(q->thread, NULL);
	/* Never started (or stopped): what is left is answered as unstored. */
	answer(q, q->discarded);
	answer(q, q->head);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->idle);
	free(q);
}

void store_queue_get_stats(struct store_queue *q, struct store_queue_stats *out)
{
	out->stored = atomic_load(&q->stored);
	out->skipped_full = atomic_load(&q->skipped_full);
	out->failed = atomic_load(&q->failed);
	out->transactions = atomic_load(&q->transactions);
	pthread_mutex_lock(&q->lock);
	out->queued_bytes = q->queued_bytes;
	pthread_mutex_unlock(&q->lock);
}
