/* SPDX-License-Identifier: MIT */
/*
 * The volume value, its key, and the checks that make its fields safe to
 * put on spfs's command line and into paths: the mounter runs as root, so
 * every field is held to a small alphabet before it gets there, whoever
 * sent it. Pod authors choose volume attributes, so the options a volume may
 * carry are an allow-list: nothing that redirects where tokens go
 * (graph_url, authority_host), whom to trust (cafile) or which files to use.
 */
#include "config.h"

#include "csi/volume.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *csi_code_name(int code)
{
	switch (code) {
	case CSI_OK:
		return "OK";
	case CSI_INVALID_ARGUMENT:
		return "INVALID_ARGUMENT";
	case CSI_DEADLINE_EXCEEDED:
		return "DEADLINE_EXCEEDED";
	case CSI_NOT_FOUND:
		return "NOT_FOUND";
	case CSI_ALREADY_EXISTS:
		return "ALREADY_EXISTS";
	case CSI_PERMISSION_DENIED:
		return "PERMISSION_DENIED";
	case CSI_FAILED_PRECONDITION:
		return "FAILED_PRECONDITION";
	case CSI_ABORTED:
		return "ABORTED";
	case CSI_INTERNAL:
		return "INTERNAL";
	case CSI_UNAVAILABLE:
		return "UNAVAILABLE";
	default:
		return "UNKNOWN";
	}
}

void csi_volume_init(struct csi_volume *v)
{
	memset(v, 0, sizeof(*v));
	sa_token_init(&v->token);
}

void csi_volume_release(struct csi_volume *v)
{
	char **fields[] = {&v->volume_id,	&v->target,    &v->source,
			   &v->client_id,	&v->tenant_id, &v->namespace_,
			   &v->service_account, &v->pod_name,  &v->options};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		free(*fields[i]);
	sa_token_release(&v->token);
	csi_volume_init(v);
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

void csi_volume_key(const struct csi_volume *v, char out[CSI_KEY_LEN + 1])
{
	const char *parts[] = {"spfs-csi/1",
			       or_empty(v->tenant_id),
			       or_empty(v->client_id),
			       or_empty(v->namespace_),
			       or_empty(v->service_account),
			       or_empty(v->source),
			       or_empty(v->options)};
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	/* Each part with its NUL: no two different lists hash alike. */
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		abort();
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1);
	EVP_DigestFinal_ex(ctx, md, &n);
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < CSI_KEY_LEN / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static bool all_of(const char *s, const char *extra)
{
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr(extra, c)))
			return false;
	}
	return true;
}

bool csi_guid_valid(const char *s)
{
	static const int dashes[] = {8, 13, 18, 23};

	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == dashes[0] || i == dashes[1] ||
			    i == dashes[2] || i == dashes[3];
		char c = s[i];
		if (dash ? c != '-'
			 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

bool csi_tenant_valid(const char *s)
{
	/* A GUID or a verified domain (contoso.onmicrosoft.com). */
	return s && *s && strlen(s) <= 253 && all_of(s, "-.") && s[0] != '.' &&
	       s[0] != '-';
}

/* Kubernetes names: DNS labels and subdomains. */
static bool k8s_name_valid(const char *s)
{
	return s && *s && strlen(s) <= 253 && all_of(s, "-.") && s[0] != '-' &&
	       s[0] != '.';
}

static bool source_valid(const char *s)
{
	if (!s || strlen(s) > 2048)
		return false;
	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "drive:", 6) != 0)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == ',')
			return false;
	return true;
}

int csi_target_check(const char *target, const char *kubelet_dir,
		     struct buf *msg)
{
	size_t kl = strlen(kubelet_dir);

	while (kl > 1 && kubelet_dir[kl - 1] == '/')
		kl--;
	if (!target || target[0] != '/' || strlen(target) >= PATH_MAX) {
		buf_appendf(msg, "target_path must be an absolute path");
		return -EINVAL;
	}
	if (strncmp(target, kubelet_dir, kl) != 0 || target[kl] != '/') {
		buf_appendf(msg,
			    "target_path %.300s is not below the kubelet's "
			    "directory %.*s (spfs-csi --kubelet-dir)",
			    target, (int)kl, kubelet_dir);
		return -EINVAL;
	}
	for (const char *p = target + 1; *p;) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.')) {
			buf_appendf(msg,
				    "target_path %.300s has an empty, '.' or "
				    "'..' component",
				    target);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++) {
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
				buf_appendf(msg, "target_path has a control "
						 "character");
				return -EINVAL;
			}
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* The options a volume may set, and the characters their values may use
 * (spfs checks the values themselves when it starts). */
static const char *const allowed_options[] = {
    "cache",	     "cache_size",    "chunk_size",   "readahead",
    "small_file",    "poll_interval", "read_timeout", "attr_timeout",
    "entry_timeout", "uid",	      "gid",	      "umask",
    "log_level",
};

static bool option_allowed(const char *key)
{
	for (size_t i = 0;
	     i < sizeof(allowed_options) / sizeof(allowed_options[0]); i++)
		if (strcmp(key, allowed_options[i]) == 0)
			return true;
	return false;
}

struct kv {
	char *key, *value;
};

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

/* Splits "k=v,k=v" into items (pointing into the writable copy s). */
static int split_options(char *s, struct kv *items, size_t max, size_t *n,
			 struct buf *msg)
{
	char *save = NULL;

	for (char *it = strtok_r(s, ",", &save); it;
	     it = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(it, '=');
		if (*n == max) {
			buf_appendf(msg, "too many options (at most %zu)", max);
			return -EINVAL;
		}
		if (eq)
			*eq = '\0';
		items[(*n)++] = (struct kv){it, eq ? eq + 1 : NULL};
	}
	return 0;
}

int csi_options_add(char **canon, const char *list, struct buf *msg)
{
	struct kv items[64];
	size_t n = 0, old_n;
	char *merged = NULL, *copy = NULL;
	struct buf out;
	int err;

	if (!list || !*list)
		return 0;
	if (strlen(list) > 1024) {
		buf_appendf(msg, "options are longer than 1024 characters");
		return -EINVAL;
	}
	copy = strdup(list);
	merged = strdup(*canon ? *canon : "");
	if (!copy || !merged) {
		err = -ENOMEM;
		goto out;
	}
	err = split_options(merged, items, 64, &n, msg);
	old_n = n;
	err = err ? err : split_options(copy, items, 64, &n, msg);
	if (err)
		goto out;
	for (size_t i = old_n; i < n; i++) {
		struct kv *o = &items[i];
		if (!o->value &&
		    (strcmp(o->key, "ro") == 0 || strcmp(o->key, "rw") == 0)) {
			o->key = NULL; /* dropped */
			continue;
		}
		if (!option_allowed(o->key)) {
			buf_appendf(
			    msg,
			    "option '%.64s' may not be set by a volume "
			    "(allowed: cache, cache_size, chunk_size, "
			    "readahead, small_file, poll_interval, "
			    "read_timeout, attr_timeout, entry_timeout, "
			    "uid, gid, umask, log_level)",
			    o->key);
			err = -EINVAL;
			goto out;
		}
		if (!o->value || !*o->value || strlen(o->value) > 32 ||
		    !all_of(o->value, ".")) {
			buf_appendf(msg,
				    "option %.64s needs a value of letters, "
				    "digits and dots (%.64s=VALUE)",
				    o->key, o->key);
			err = -EINVAL;
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			if (!items[j].key || strcmp(items[j].key, o->key) != 0)
				continue;
			if (strcmp(items[j].value, o->value) != 0) {
				buf_appendf(msg,
					    "option %.64s is given twice, as "
					    "%.32s and %.32s",
					    o->key, items[j].value, o->value);
				err = -EINVAL;
				goto out;
			}
			o->key = NULL; /* the same value again */
			break;
		}
	}
	/* Dropped entries (NULL keys) are compacted before sorting. */
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (items[i].key)
			items[m++] = items[i];
	qsort(items, m, sizeof(items[0]), kv_cmp);
	buf_init(&out, 4096);
	for (size_t i = 0; i < m && !err; i++)
		err = buf_appendf(&out, "%s%s=%s", i ? "," : "", items[i].key,
				  items[i].value);
	if (!err) {
		char *s = buf_detach(&out, NULL);
		if (!s) {
			err = -ENOMEM;
		} else {
			free(*canon);
			*canon = s;
		}
	}
	buf_release(&out);
out:
	free(copy);
	free(merged);
	return err;
}

enum csi_code csi_volume_check(const struct csi_volume *v,
			       const char *kubelet_dir, struct buf *msg)
{
	if (!v->volume_id || !*v->volume_id || strlen(v->volume_id) > 1024 ||
	    strchr(v->volume_id, '\n')) {
		buf_appendf(msg, "volume_id is missing or malformed");
		return CSI_INVALID_ARGUMENT;
	}
	if (csi_target_check(v->target, kubelet_dir, msg) != 0)
		return CSI_INVALID_ARGUMENT;
	if (!source_valid(v->source)) {
		buf_appendf(msg,
			    "volume attribute source must be the library's "
			    "https:// URL as the browser shows it (or "
			    "drive:ID), without commas or control characters");
		return CSI_INVALID_ARGUMENT;
	}
	if (!csi_guid_valid(v->client_id)) {
		buf_appendf(msg, "volume attribute clientID must be the "
				 "identity's client id, a GUID");
		return CSI_INVALID_ARGUMENT;
	}
	if (!csi_tenant_valid(v->tenant_id)) {
		buf_appendf(msg, "volume attribute tenantID must be a tenant "
				 "id (a GUID) or a tenant domain");
		return CSI_INVALID_ARGUMENT;
	}
	if (!k8s_name_valid(v->namespace_) ||
	    !k8s_name_valid(v->service_account)) {
		buf_appendf(msg, "the pod's namespace and service account are "
				 "missing: the CSIDriver needs podInfoOnMount: "
				 "true");
		return CSI_INVALID_ARGUMENT;
	}
	if (v->pod_name && !k8s_name_valid(v->pod_name)) {
		buf_appendf(msg, "the pod's name is malformed");
		return CSI_INVALID_ARGUMENT;
	}
	if (v->options && *v->options) {
		char *again = NULL;
		int err = csi_options_add(&again, v->options, msg);
		bool canonical = !err && strcmp(again, v->options) == 0;
		free(again);
		if (err)
			return CSI_INVALID_ARGUMENT;
		if (!canonical) {
			buf_appendf(msg, "options are not in canonical form");
			return CSI_INVALID_ARGUMENT;
		}
	}
	if (!v->token.token) {
		buf_appendf(msg, "no service-account token");
		return CSI_INVALID_ARGUMENT;
	}
	return CSI_OK;
}
