/* SPDX-License-Identifier: MIT */
/*
 * Read-ahead (reader_impl.h): sequential handles get the next chunks of
 * their file queued for workers, within a fair share of the memory cap per
 * stream (at least two chunks ahead) and at most FILE_STREAMS parallel
 * downloads per file; workers are started as the queue needs them, up to
 * `workers`. Small files of a folder read in order are prefetched into the
 * store the same way.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "cache/content.h"
#include "fs/reader_impl.h"
#include "fs/store_queue.h"

#define FILE_STREAMS 4 /* parallel downloads of one file at most */
#define FETCH_NICE   2 /* download workers run this much nicer (worker_main) */

/* Chunks each sequential stream may have ahead of it. */
static uint64_t share_locked(const struct reader *r)
{
	uint64_t total = r->mem_cap / r->chunk;
	uint64_t each = total / (r->streams ? r->streams : 1);

	each = each > 1 ? each - 1 : 0; /* the chunk being read */
	if (each > r->ra_chunks)
		each = r->ra_chunks;
	return each < 2 ? 2 : each;
}

static void *worker_main(void *arg);

/* What a job will bring in: a fetch takes a whole chunk buffer. */
static uint64_t job_bytes(const struct reader *r)
{
	return r->chunk;
}

/* Memory in use or promised stays within the cap: read-ahead and prefetch
 * wait for readers to catch up instead. */
static bool room_for_job_locked(struct reader *r, uint64_t need)
{
	if (budget_used(r->budget) + r->jobs_bytes + need > r->mem_cap)
		resident_trim_locked(r);
	return budget_used(r->budget) + r->jobs_bytes + need <= r->mem_cap;
}

/* Queues chunk idx of f (UNKNOWN or FAILED) for a worker, starting one
 * when none waits. */
static bool queue_job_locked(struct reader *r, struct rfile *f, struct chunk *c,
			     bool prefetch)
{
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return false;
	j->f = f;
	j->idx = c->idx;
	j->prefetch = prefetch;
	j->bytes = job_bytes(r);
	j->next = NULL;
	if (r->jq_tail)
		r->jq_tail->next = j;
	else
		r->jq_head = j;
	r->jq_tail = j;
	rfile_busy_locked(r, f);
	f->jobs++;
	r->jobs_bytes += j->bytes;
	c->state = CH_QUEUED;
	if (!r->nwaiting && r->workers && r->nstarted < r->max_workers &&
	    pthread_create(&r->workers[r->nstarted], NULL, worker_main, r) == 0)
		r->nstarted++;
	pthread_cond_signal(&r->job_cond);
	return true;
}

void readahead_stream_locked(struct reader_handle *h, bool on)
{
	if (h->streaming == on)
		return;
	h->streaming = on;
	if (on)
		h->r->streams++;
	else
		h->r->streams--;
}

/* Sequential readers get the next chunks queued for the workers. */
void readahead_locked(struct reader_handle *h, uint64_t off, size_t size)
{
	struct reader *r = h->r;
	struct rfile *f = h->f;

	/* The kernel sends a sequential reader's requests in parallel, so
	 * they arrive a little out of order: near the last end counts. */
	const uint64_t slack = 4u << 20;
	bool sequential =
	    off + slack >= h->next_off && off <= h->next_off + slack;

	if (sequential)
		h->window = h->window ? h->window * 2 : 1;
	else
		h->window = 0;
	readahead_stream_locked(h, h->window > 0);
	uint64_t share = share_locked(r);
	if (h->window > share)
		h->window = share;
	if (h->window > r->ra_chunks)
		h->window = r->ra_chunks;
	if (!sequential || off + size > h->next_off)
		h->next_off = off + size;
	if (!h->window || !r->workers || !r->max_workers || f->dead)
		return;
	uint64_t last = (off + size - 1) / r->chunk;
	uint64_t from = last + 1 > h->ahead ? last + 1 : h->ahead;
	uint64_t to = last + h->window;
	if (to >= f->nchunks)
		to = f->nchunks - 1;
	for (uint64_t i = from; i <= to && i < f->nchunks; i++) {
		struct chunk *c = chunk_map_add(&f->chunks, i);
		if (!c) {
			to = i - 1;
			break;
		}
		c->f = f;
		/* Stored chunks are loaded ahead too: reading the store then
		 * runs on the workers beside the reader, several at once
		 * (which matters most when the cache file is not in the
		 * kernel's page cache). */
		if (c->state != CH_UNKNOWN && c->state != CH_FAILED &&
		    c->state != CH_STORED)
			continue; /* in memory, or on its way */
		/* More parallel ranges of one file stop paying off (measured)
		 * and starve the store's thread of CPU. */
		if (f->jobs >= FILE_STREAMS ||
		    !room_for_job_locked(r, job_bytes(r)) ||
		    !queue_job_locked(r, f, c, false)) {
			to = i - 1;
			break;
		}
		atomic_fetch_add(&r->readahead_chunks, 1);
	}
	if (to + 1 > h->ahead)
		h->ahead = to + 1;
}

static void *worker_main(void *arg)
{
	struct reader *r = arg;

	pthread_setname_np(pthread_self(), "spfs-fetch");
	/* Under a CPU shortage downloads, which are ahead of the readers
	 * anyway, yield to the threads serving readers and to the store
	 * thread: at equal weight the store fell behind and a quarter of a
	 * file's chunks went unstored (bench s1 on two cores). Linux applies
	 * a thread's own nice value; raising it needs no privilege. */
	id_t tid = (id_t)syscall(SYS_gettid);
	errno = 0;
	int prio = getpriority(PRIO_PROCESS, tid);
	if (errno || setpriority(PRIO_PROCESS, tid, prio + FETCH_NICE))
		log_debug("fetch: cannot lower this worker's priority: %s",
			  strerror(errno));
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		struct job *j = r->jq_head;
		if (!j) {
			r->nwaiting++;
			pthread_cond_wait(&r->job_cond, &r->lock);
			r->nwaiting--;
			continue;
		}
		r->jq_head = j->next;
		if (!r->jq_head)
			r->jq_tail = NULL;
		struct rfile *f = j->f;
		uint64_t idx = j->idx, bytes = j->bytes;
		bool prefetch = j->prefetch;
		free(j);
		struct chunk *c = chunk_map_get(&f->chunks, idx);
		bool wanted = c && c->state == CH_QUEUED && !f->dead &&
			      (f->opens || prefetch);
		if (c && c->state == CH_QUEUED && !wanted)
			c->state = CH_UNKNOWN; /* its reader has gone */
		if (wanted) {
			bool stored = c->stored && r->store;
			c->state = CH_FETCHING;
			pthread_mutex_unlock(&r->lock);
			if (!stored || fetch_from_store(r, f, idx) != 0)
				fetch_chunk(r, f, idx,
					    reader_now() + r->read_timeout);
			pthread_mutex_lock(&r->lock);
		}
		r->jobs_bytes -= bytes;
		f->jobs--;
		rfile_maybe_idle_locked(r, f);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int reader_start(struct reader *r)
{
	if (r->workers)
		return 0;
	if (r->sq) {
		int err = store_queue_start(r->sq);
		if (err)
			return err;
	}
	pthread_mutex_lock(&r->lock);
	r->workers =
	    calloc(r->max_workers ? r->max_workers : 1, sizeof(*r->workers));
	pthread_mutex_unlock(&r->lock);
	return r->workers ? 0 : -ENOMEM;
}

int reader_prefetch(struct reader *r, const struct reader_file *files, size_t n)
{
	int queued = 0, err;

	/* Only into the store: prefetched bytes must not crowd memory. */
	if (!r->store || !r->workers || !r->max_workers)
		return 0;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < n && !r->stop; i++) {
		const struct reader_file *in = &files[i];
		if (in->size > r->small || !room_for_job_locked(r, r->chunk))
			continue;
		struct rfile *f =
		    rfile_find_locked(r, in->item_id, in->version);
		if (!f)
			f = rfile_new_locked(r, in, &err);
		if (!f || f->dead || f->nchunks != 1)
			continue;
		struct chunk *c = chunk_map_add(&f->chunks, 0);
		if (!c)
			continue;
		c->f = f;
		if (c->state != CH_UNKNOWN)
			continue; /* stored, in memory, queued or failed */
		if (queue_job_locked(r, f, c, true)) {
			atomic_fetch_add(&r->prefetched_files, 1);
			queued++;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return queued;
}
