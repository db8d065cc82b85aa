/* SPDX-License-Identifier: MIT */
/* Children/delta pages: only valid items reach the callback, every array
 * entry is passed or skipped, links match the JSON, a callback error on the
 * Nth item (N from the first byte) stops the walk and is returned; a page
 * whose parse would cost more than GRAPH_JSON_COST_MAX, or with more than
 * 5,000 entries, is refused before any item is seen. */
#include "config.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_cost.h"
#include "base/log.h"
#include "graph/graph.h"
#include "graph/item.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STOP_ERR (-ECANCELED)

struct walk {
	size_t calls;
	size_t fail_at; /* SIZE_MAX: never */
	size_t first;	/* calls in the first walk */
	uint64_t *seen; /* per call: hash of what the callback saw */
	size_t cap;
};

static uint64_t hash(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return (h ^ (s ? 0xff : 0xfe)) * 0x100000001b3ULL;
}

static int on_item(void *ctx, const struct graph_item *it)
{
	struct walk *w = ctx;

	if (!it->id || !*it->id)
		abort();
	if (!it->deleted) {
		if (!it->name || it->size < 0 ||
		    (it->is_root && !it->is_folder) ||
		    (!it->is_root &&
		     !graph_name_valid(it->name, strlen(it->name))))
			abort();
		if (it->mtime.tv_nsec < 0 || it->mtime.tv_nsec >= 1000000000 ||
		    it->ctime.tv_nsec < 0 || it->ctime.tv_nsec >= 1000000000)
			abort();
	}
	uint64_t h = hash(hash(0xcbf29ce484222325ULL, it->id), it->name);
	h = hash(h, it->etag) ^ (uint64_t)it->size ^ it->deleted;
	if (w->calls == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 16;
		w->seen = realloc(w->seen, w->cap * sizeof(*w->seen));
		if (!w->seen)
			abort();
	}
	if (w->fail_at == SIZE_MAX)
		w->seen[w->calls] = h;
	else if (w->calls >= w->first || w->seen[w->calls] != h)
		abort(); /* the same items, in the same order, each time */
	return w->calls++ == w->fail_at ? STOP_ERR : 0;
}

static void check_links(const struct graph_page *p)
{
	/* Terminated strings: ASan reports a read past the allocation. */
	if (p->next_link)
		(void)strlen(p->next_link);
	if (p->delta_link)
		(void)strlen(p->delta_link);
}

/* A string link with a NUL byte in it: the parser refuses the page. */
static int link_has_nul(struct json_object *o, const char *key)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, key, &v) &&
	       json_object_is_type(v, json_type_string) &&
	       strlen(json_object_get_string(v)) !=
		   (size_t)json_object_get_string_len(v);
}

/* What the page says, read independently: the "value" array and links. */
static int link_matches(struct json_object *o, const char *key, const char *got)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return got == NULL;
	return got && strcmp(got, json_object_get_string(v)) == 0;
}

/* json_cost()'s prices for the values json-c built (keys not counted). */
static size_t tree_cost(struct json_object *o)
{
	size_t cost = 0;

	if (json_object_is_type(o, json_type_object)) {
		cost += 800;
		json_object_object_foreach(o, key, val)
		{
			(void)key;
			cost += tree_cost(val);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		cost += 800;
		for (size_t i = 0; i < json_object_array_length(o); i++)
			cost += tree_cost(json_object_array_get_idx(o, i));
	} else {
		cost +=
		    100; /* null included: json-c allocates none, we count */
	}
	return cost;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	struct walk w = {.fail_at = SIZE_MAX};
	struct graph_page p;
	/* An exact-size copy: ASan catches any read beyond it. */
	char *copy = malloc(size ? size : 1);

	if (!quiet) {
		log_set_level(LOG_ERROR); /* one warning per skipped page */
		quiet = 1;
	}
	if (!copy)
		abort();
	memcpy(copy, data, size);

	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = NULL, *value = NULL;
	if (!tok)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, copy, (int)size);
	if (o && (json_tokener_get_error(tok) != json_tokener_success ||
		  !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	/* Only whitespace may follow the object. */
	for (size_t i = o ? json_tokener_get_parse_end(tok) : size; i < size;
	     i++) {
		if (!memchr(" \t\r\n", copy[i], 4)) {
			json_object_put(o);
			o = NULL;
			break;
		}
	}
	json_tokener_free(tok);
	if (o && (!json_object_object_get_ex(o, "value", &value) ||
		  !json_object_is_type(value, json_type_array)))
		value = NULL;
	/* The estimate is an upper bound of what json-c built: every value
	 * of the tree at its price, whatever the text's tricks. */
	if (o && json_cost(copy, size) < size + tree_cost(o))
		abort();
	/* Past the bounds, the page is as bad as one without a value. */
	int too_big = json_cost(copy, size) > GRAPH_JSON_COST_MAX ||
		      (value && json_object_array_length(value) > 5000);
	if (too_big)
		value = NULL;

	int err = graph_page_parse(copy, size, "fuzz", on_item, &w, &p);
	check_links(&p);
	if (p.items != w.calls)
		abort();
	if (err == 0) {
		if (!value ||
		    p.items + p.skipped != json_object_array_length(value) ||
		    !link_matches(o, "@odata.nextLink", p.next_link) ||
		    !link_matches(o, "@odata.deltaLink", p.delta_link))
			abort();
		graph_page_release(&p);
		if (p.next_link || p.delta_link)
			abort();
	} else {
		int bad_link = value && (link_has_nul(o, "@odata.nextLink") ||
					 link_has_nul(o, "@odata.deltaLink"));
		if (p.next_link || p.delta_link ||
		    (err == -EIO) != (!value || bad_link) ||
		    (err != -EIO && err != -ENOMEM))
			abort();
		if (err == -EIO && !bad_link && (p.items || p.skipped))
			abort();
	}

	/* Again, stopping at the Nth item: its error comes back, nothing
	 * after it is seen, and no links are handed out. */
	if (err == 0 && w.calls > 0) {
		w.first = w.calls;
		w.fail_at = data[0] % w.first;
		w.calls = 0;
		err = graph_page_parse(copy, size, "fuzz", on_item, &w, &p);
		check_links(&p);
		if (err != STOP_ERR || w.calls != w.fail_at + 1 ||
		    p.items != w.calls || p.next_link || p.delta_link)
			abort();
	}

	json_object_put(o);
	free(w.seen);
	free(copy);
	return 0;
}
