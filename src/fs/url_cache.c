/* SPDX-License-Identifier: MIT */
/* Download URLs by item id (url_cache.h): a chained hash table. */
#include "config.h"

#include "fs/url_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 1024

struct entry {
	struct entry *next;
	char *item_id, *url;
	double at;
};

struct url_cache {
	pthread_mutex_t lock;
	struct entry *b[BUCKETS];
	size_t n;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t bucket(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % BUCKETS);
}

struct url_cache *url_cache_new(void)
{
	struct url_cache *u = calloc(1, sizeof(*u));

	if (u)
		pthread_mutex_init(&u->lock, NULL);
	return u;
}

static void entry_free(struct entry *e)
{
	free(e->item_id);
	free(e->url);
	free(e);
}

void url_cache_free(struct url_cache *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		while (u->b[i]) {
			struct entry *e = u->b[i];
			u->b[i] = e->next;
			entry_free(e);
		}
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static struct entry **find_locked(struct url_cache *u, const char *item_id)
{
	struct entry **pp = &u->b[bucket(item_id)];

	while (*pp && strcmp((*pp)->item_id, item_id) != 0)
		pp = &(*pp)->next;
	return pp;
}

void url_cache_note(struct url_cache *u, const char *item_id, const char *url)
{
	if (!item_id || !url)
		return;
	char *copy = strdup(url);
	if (!copy)
		return;
	pthread_mutex_lock(&u->lock);
	struct entry **pp = find_locked(u, item_id);
	struct entry *e = *pp;
	if (!e) {
		if (u->n >= URL_CACHE_MAX)
			goto drop;
		e = calloc(1, sizeof(*e));
		if (!e || !(e->item_id = strdup(item_id))) {
			free(e);
			goto drop;
		}
		e->next = u->b[bucket(item_id)];
		u->b[bucket(item_id)] = e;
		u->n++;
	}
	free(e->url);
	e->url = copy;
	e->at = now_s();
	copy = NULL;
drop:
	pthread_mutex_unlock(&u->lock);
	free(copy);
}

char *url_cache_get(struct url_cache *u, const char *item_id, double max_age,
		    double *noted_at)
{
	char *url = NULL;

	pthread_mutex_lock(&u->lock);
	struct entry *e = *find_locked(u, item_id);
	if (e && now_s() - e->at < max_age) {
		url = strdup(e->url);
		*noted_at = e->at;
	}
	pthread_mutex_unlock(&u->lock);
	return url;
}

void url_cache_drop(struct url_cache *u, const char *item_id)
{
	pthread_mutex_lock(&u->lock);
	struct entry **pp = find_locked(u, item_id);
	if (*pp) {
		struct entry *e = *pp;
		*pp = e->next;
		entry_free(e);
		u->n--;
	}
	pthread_mutex_unlock(&u->lock);
}
