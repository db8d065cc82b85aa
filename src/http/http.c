/* SPDX-License-Identifier: MIT */
/*
 * libcurl transport.
 *
 * Threads: any thread may call http_perform(). Each thread lazily gets its
 * own easy handle (pthread key), never shared; all of them attach to one
 * CURLSH so DNS, TLS sessions and connections are reused across threads.
 * Lock order: share locks are leaf locks taken only inside curl; h->lock
 * guards the list of easy handles and is never held across a transfer.
 *
 * Secrets: libcurl copies request headers (the bearer token) and POST
 * bodies (assertions, client secrets) into buffers of its own. It is given
 * an allocator that wipes every block it frees or outgrows, so a core or a
 * later heap bug does not find old tokens in freed memory.
 */
#include "config.h"

#include "http/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "base/log.h"

#define DEFAULT_MAX_BODY (4u << 20)

struct easy_slot {
	CURL *easy;
	struct http *owner;
	struct easy_slot *next;
};

struct http {
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_key_t key;
	pthread_mutex_t lock; /* guards slots */
	struct easy_slot *slots;
	char *cafile;
	char *user_agent;
	long connect_timeout_ms;
	long low_speed_time_s;
	int allow_http;
	atomic_bool aborted; /* http_abort(): shutting down */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void wipe_free(void *p)
{
	if (p) {
		explicit_bzero(p, malloc_usable_size(p));
		free(p);
	}
}

/* Grows by copy so the old block can be wiped; shrinks in place. */
static void *wipe_realloc(void *p, size_t n)
{
	if (!p)
		return malloc(n);
	size_t old = malloc_usable_size(p);
	if (n && n <= old)
		return p;
	void *q = malloc(n ? n : 1);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	wipe_free(p);
	return q;
}

static char *plain_strdup(const char *s)
{
	return strdup(s);
}

static void global_init(void)
{
	global_rc = curl_global_init_mem(CURL_GLOBAL_ALL, malloc, wipe_free,
					 wipe_realloc, plain_strdup, calloc);
}

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access,
		       void *userp)
{
	struct http *h = userp;

	(void)c;
	(void)access;
	pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *userp)
{
	struct http *h = userp;

	(void)c;
	pthread_mutex_unlock(&h->share_locks[data]);
}

/* Thread exit: the thread's easy handle goes with it. */
static void slot_destroy(void *p)
{
	struct easy_slot *slot = p;
	struct http *h = slot->owner;

	pthread_mutex_lock(&h->lock);
	for (struct easy_slot **pp = &h->slots; *pp; pp = &(*pp)->next) {
		if (*pp == slot) {
			*pp = slot->next;
			break;
		}
	}
	pthread_mutex_unlock(&h->lock);
	curl_easy_cleanup(slot->easy);
	free(slot);
}

struct http *http_new(const struct http_config *cfg, int *err)
{
	struct http *h = NULL;
	int e = 0;

	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		e = -EINVAL;
		goto out;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		e = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	pthread_mutex_init(&h->lock, NULL);
	if (pthread_key_create(&h->key, slot_destroy) != 0) {
		free(h);
		h = NULL;
		e = -ENOMEM;
		goto out;
	}
	h->connect_timeout_ms =
	    cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
	h->low_speed_time_s =
	    cfg->low_speed_time_s > 0 ? cfg->low_speed_time_s : 30;
	h->allow_http = cfg->allow_http;
	h->cafile = cfg->cafile ? strdup(cfg->cafile) : NULL;
	h->user_agent =
	    strdup(cfg->user_agent ? cfg->user_agent
				   : "ISV|spfs|spfs/" PACKAGE_VERSION);
	h->share = curl_share_init();
	if ((cfg->cafile && !h->cafile) || !h->user_agent || !h->share) {
		e = -ENOMEM;
		goto out;
	}
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
out:
	if (e && h) {
		http_free(h);
		h = NULL;
	}
	if (err)
		*err = e;
	return h;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	/* Handles of threads still alive are cleaned here; their key
	 * destructors will not run once the key is deleted. */
	pthread_key_delete(h->key);
	struct easy_slot *s = h->slots;
	while (s) {
		struct easy_slot *next = s->next;
		curl_easy_cleanup(s->easy);
		free(s);
		s = next;
	}
	if (h->share)
		curl_share_cleanup(h->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->share_locks[i]);
	pthread_mutex_destroy(&h->lock);
	free(h->cafile);
	free(h->user_agent);
	free(h);
}

static CURL *thread_easy(struct http *h)
{
	struct easy_slot *slot = pthread_getspecific(h->key);

	if (slot)
		return slot->easy;
	slot = calloc(1, sizeof(*slot));
	if (!slot)
		return NULL;
	slot->easy = curl_easy_init();
	if (!slot->easy) {
		free(slot);
		return NULL;
	}
	slot->owner = h;
	pthread_mutex_lock(&h->lock);
	slot->next = h->slots;
	h->slots = slot;
	pthread_mutex_unlock(&h->lock);
	pthread_setspecific(h->key, slot);
	return slot->easy;
}

void http_response_init(struct http_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	buf_init(&resp->body, DEFAULT_MAX_BODY);
	resp->content_length = -1;
}

static void clear_headers(struct http_response *resp)
{
	char **fields[] = {&resp->retry_after,	&resp->request_id,
			   &resp->location,	&resp->content_range,
			   &resp->content_type, &resp->www_authenticate,
			   &resp->etag};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		free(*fields[i]);
		*fields[i] = NULL;
	}
}

void http_response_release(struct http_response *resp)
{
	buf_release(&resp->body);
	clear_headers(resp);
}

struct transfer {
	const struct http_request *req;
	struct http_response *resp;
	CURL *easy;
	int body_started;
	int error; /* set by callbacks to abort with this errno */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct transfer *t = userp;
	size_t n = size * nmemb;
	int err;

	if (!t->body_started) {
		/* Headers are complete: let a sink see what it receives. */
		long status = 0;
		curl_off_t cl = -1;
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
				  &cl);
		t->resp->status = status;
		t->resp->content_length = cl;
		t->body_started = 1;
	}
	if (t->req->sink)
		err = t->req->sink(t->req->sink_ctx, data, n);
	else
		err = buf_append(&t->resp->body, data, n);
	if (err) {
		t->error = err;
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	}
	return n;
}

/* Keeps the value of a header we care about (trimmed, bounded). */
static void keep_header(char **slot, const char *value, size_t len)
{
	while (len && (*value == ' ' || *value == '\t')) {
		value++;
		len--;
	}
	while (len && (value[len - 1] == '\r' || value[len - 1] == '\n' ||
		       value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	if (len > 8192)
		return;
	free(*slot);
	*slot = strndup(value, len);
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
	struct transfer *t = userp;
	size_t n = size * nmemb;
	static const struct {
		const char *name;
		size_t offset;
	} wanted[] = {
	    {"retry-after", offsetof(struct http_response, retry_after)},
	    {"request-id", offsetof(struct http_response, request_id)},
	    {"location", offsetof(struct http_response, location)},
	    {"content-range", offsetof(struct http_response, content_range)},
	    {"content-type", offsetof(struct http_response, content_type)},
	    {"www-authenticate",
	     offsetof(struct http_response, www_authenticate)},
	    {"etag", offsetof(struct http_response, etag)},
	};

	/* A new status line (after 1xx or a redirect) starts a new response. */
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		clear_headers(t->resp);
		return n;
	}
	const char *colon = memchr(line, ':', n);
	if (!colon)
		return n;
	size_t name_len = (size_t)(colon - line);
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		if (strlen(wanted[i].name) == name_len &&
		    strncasecmp(line, wanted[i].name, name_len) == 0) {
			char **slot =
			    (char **)((char *)t->resp + wanted[i].offset);
			keep_header(slot, colon + 1, n - name_len - 1);
			break;
		}
	}
	return n;
}

static void make_uuid(char out[37])
{
	unsigned char r[16];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* Only a correlation id: weak randomness is acceptable. */
		for (size_t i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)rand();
	}
	r[6] = (r[6] & 0x0f) | 0x40;
	r[8] = (r[8] & 0x3f) | 0x80;
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%"
		 "02x%02x",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
		 r[10], r[11], r[12], r[13], r[14], r[15]);
}

static int map_curl_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return -EINVAL;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_PARTIAL_FILE:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		return -EPROTO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

void http_abort(struct http *h)
{
	atomic_store(&h->aborted, true);
}

int http_sleep(struct http *h, double seconds)
{
	/* Slices of at most 100 ms: http_abort() stays a plain atomic
	 * store (signal-safe), and a sleeper notices it within a slice. */
	while (seconds > 0 && !atomic_load(&h->aborted)) {
		double d = seconds < 0.1 ? seconds : 0.1;
		struct timespec ts = {0, (long)(d * 1e9)};
		nanosleep(&ts, NULL);
		seconds -= d;
	}
	return atomic_load(&h->aborted) ? -ESHUTDOWN : 0;
}

/* curl calls this about once a second, and more often while data flows. */
static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct http *h = userp;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&h->aborted) ? 1 : 0;
}

char *http_url_origin(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
	char *out = NULL;

	pthread_once(&global_once, global_init);
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_NO_USER ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
		CURLUE_OK ||
	    (strcasecmp(scheme, "https") != 0 &&
	     strcasecmp(scheme, "http") != 0))
		goto out;
	size_t n = strlen(scheme) + strlen(host) + strlen(port) + 5;
	out = malloc(n);
	if (!out)
		goto out;
	snprintf(out, n, "%s://%s:%s", scheme, host, port);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_url_cleanup(u);
	return out;
}

int http_error_is_transient(int err)
{
	return err == -ECONNREFUSED || err == -ETIMEDOUT ||
	       err == -ECONNRESET || err == -EIO;
}

static int scheme_allowed(const struct http *h, const struct http_request *req)
{
	if (strncasecmp(req->url, "https://", 8) == 0)
		return 1;
	return (h->allow_http || req->allow_http) &&
	       strncasecmp(req->url, "http://", 7) == 0;
}

int http_perform(struct http *h, const struct http_request *req,
		 struct http_response *resp)
{
	struct transfer t = {.req = req, .resp = resp};
	struct curl_slist *headers = NULL;
	struct buf line;
	const char *method = req->method ? req->method : "GET";
	int err = 0;
	CURLcode rc;

	buf_init_secret(&line, 64 * 1024);
	clear_headers(resp);
	resp->status = 0;
	resp->error[0] = '\0';
	buf_reset(&resp->body);
	resp->body.max = req->max_body ? req->max_body : DEFAULT_MAX_BODY;
	resp->body.secret = req->secret_body;
	make_uuid(resp->client_request_id);

	if (atomic_load(&h->aborted)) {
		snprintf(resp->error, sizeof(resp->error), "shutting down");
		err = -ESHUTDOWN;
		goto out;
	}
	if (!scheme_allowed(h, req)) {
		snprintf(resp->error, sizeof(resp->error),
			 "refusing a non-https URL (plain http is only allowed "
			 "with the explicit test option)");
		err = -EINVAL;
		goto out;
	}
	CURL *easy = thread_easy(h);
	if (!easy) {
		err = -ENOMEM;
		goto out;
	}
	curl_easy_reset(easy);
	t.easy = easy;

	for (size_t i = 0; i < req->nheaders; i++) {
		buf_reset(&line);
		if (buf_appendf(&line, "%s: %s", req->headers[i].name,
				req->headers[i].value) != 0) {
			err = -EINVAL;
			goto out;
		}
		struct curl_slist *n = curl_slist_append(headers, line.data);
		if (!n) {
			err = -ENOMEM;
			goto out;
		}
		headers = n;
	}
	buf_reset(&line);
	buf_appendf(&line, "client-request-id: %s", resp->client_request_id);
	struct curl_slist *n1 = curl_slist_append(headers, line.data);
	struct curl_slist *n2 = n1 ? curl_slist_append(n1, "Expect:") : NULL;
	if (!n2) {
		headers = n1 ? n1 : headers;
		err = -ENOMEM;
		goto out;
	}
	headers = n2;

	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_SHARE, h->share);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	if (req->no_proxy)
		curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR,
			 h->allow_http || req->allow_http ? "http,https"
							  : "https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->cafile)
		curl_easy_setopt(easy, CURLOPT_CAINFO, h->cafile);
	curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, h->user_agent);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
			 h->connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, h->low_speed_time_s);
	if (req->timeout_ms > 0)
		curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, resp->error);
	curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(easy, CURLOPT_XFERINFODATA, h);
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(easy, CURLOPT_POST, 1L);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS,
				 req->body ? req->body : "");
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body_len);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
	}

	rc = curl_easy_perform(easy);
	long status = 0;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_off_t cl = -1;
	curl_easy_getinfo(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	resp->content_length = cl;
	/* Detach our buffers: the handle outlives this call. */
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, NULL);

	if (rc == CURLE_WRITE_ERROR && t.error) {
		err = t.error;
		if (err == -EFBIG)
			snprintf(resp->error, sizeof(resp->error),
				 "response body larger than %zu bytes",
				 resp->body.max);
	} else if (rc == CURLE_ABORTED_BY_CALLBACK) {
		err = -ESHUTDOWN;
		snprintf(resp->error, sizeof(resp->error), "shutting down");
	} else if (rc != CURLE_OK) {
		err = map_curl_error(rc);
		if (!resp->error[0])
			snprintf(resp->error, sizeof(resp->error), "%s",
				 curl_easy_strerror(rc));
	}
	resp->status = status;
out:
	/* Header copies may hold a bearer token: wipe before freeing. */
	for (struct curl_slist *s = headers; s; s = s->next)
		explicit_bzero(s->data, strlen(s->data));
	curl_slist_free_all(headers);
	buf_release(&line);
	return err;
}
