/* SPDX-License-Identifier: MIT */
/* NodePublishVolume / NodeUnpublishVolume checks: every INVALID_ARGUMENT
 * case the plugin answers before the mounter is asked, the token's two
 * places, the option allow-list, and what makes two volumes share a
 * daemon. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csi/request.h"

#define CLIENT "11111111-2222-3333-4444-555555555555"
#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define TARGET "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/sp/mount"
#define JWT    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"

static const struct csi_policy policy = {.kubelet_dir = "/var/lib/kubelet"};

static char tokens_json[512];

/* A complete inline-volume request as the kubelet sends it. */
struct fixture {
	struct csi_kv ctx[16];
	struct csi_kv secrets[4];
	const char *flags[4];
	struct csi_publish_request r;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(tokens_json, sizeof(tokens_json),
		 "{\"api://AzureADTokenExchange\":{\"token\":\"%s\","
		 "\"expirationTimestamp\":\"2026-01-02T03:04:05Z\"}}",
		 JWT);
	struct csi_kv ctx[] = {
	    {"source", "https://contoso.sharepoint.com/sites/Finance"},
	    {"clientID", CLIENT},
	    {"tenantID", TENANT},
	    {"csi.storage.k8s.io/pod.name", "app-7d9f"},
	    {"csi.storage.k8s.io/pod.namespace", "data"},
	    {"csi.storage.k8s.io/pod.uid", "u1"},
	    {"csi.storage.k8s.io/serviceAccount.name", "reader"},
	    {"csi.storage.k8s.io/ephemeral", "true"},
	    {SA_TOKENS_KEY, tokens_json},
	};
	memcpy(f->ctx, ctx, sizeof(ctx));
	f->r = (struct csi_publish_request){
	    .volume_id = "csi-0123",
	    .target_path = TARGET,
	    .has_capability = true,
	    .access_type = CSI_ACCESS_MOUNT,
	    .has_access_mode = true,
	    .access_mode = CSI_MODE_SINGLE_NODE_WRITER,
	    .readonly = true,
	    .volume_context = f->ctx,
	    .n_volume_context = sizeof(ctx) / sizeof(ctx[0]),
	    .mount_flags = f->flags,
	    .secrets = f->secrets,
	};
}

static void set_ctx(struct fixture *f, const char *key, const char *value)
{
	for (size_t i = 0; i < f->r.n_volume_context; i++) {
		if (strcmp(f->ctx[i].key, key) == 0) {
			if (value) {
				f->ctx[i].value = value;
			} else { /* remove */
				f->ctx[i] = f->ctx[--f->r.n_volume_context];
			}
			return;
		}
	}
	f->ctx[f->r.n_volume_context++] = (struct csi_kv){key, value};
}

/* Runs the check; returns the code, leaves the message in msg_out. */
static enum csi_code check(struct fixture *f, char *msg_out, size_t n)
{
	struct csi_volume v;
	struct buf msg;
	enum csi_code code;

	buf_init(&msg, 4096);
	code = csi_publish_check(&f->r, &policy, &v, &msg);
	snprintf(msg_out, n, "%s", buf_str(&msg));
	/* No message ever carries the token. */
	assert_null(strstr(buf_str(&msg), "c2ln"));
	if (code == CSI_OK)
		csi_volume_release(&v);
	buf_release(&msg);
	return code;
}

static void expect_invalid(struct fixture *f, const char *words)
{
	char msg[4096];

	assert_int_equal(check(f, msg, sizeof(msg)), CSI_INVALID_ARGUMENT);
	if (!strstr(msg, words))
		fail_msg("message '%s' does not say '%s'", msg, words);
}

/* The complete request with one attribute changed (NULL: removed). */
static void expect_ctx_invalid(const char *key, const char *value,
			       const char *words)
{
	struct fixture f;

	fixture_init(&f);
	set_ctx(&f, key, value);
	expect_invalid(&f, words);
}

static void test_complete_request(void **state)
{
	struct fixture f;
	struct csi_volume v;
	struct buf msg;

	(void)state;
	fixture_init(&f);
	buf_init(&msg, 4096);
	assert_int_equal(csi_publish_check(&f.r, &policy, &v, &msg), CSI_OK);
	assert_string_equal(v.volume_id, "csi-0123");
	assert_string_equal(v.target, TARGET);
	assert_string_equal(v.source,
			    "https://contoso.sharepoint.com/sites/Finance");
	assert_string_equal(v.client_id, CLIENT);
	assert_string_equal(v.tenant_id, TENANT);
	assert_string_equal(v.namespace_, "data");
	assert_string_equal(v.service_account, "reader");
	assert_string_equal(v.pod_name, "app-7d9f");
	assert_true(v.ephemeral);
	assert_true(v.readonly);
	assert_string_equal(v.options, "");
	assert_string_equal(v.token.token, JWT);
	assert_int_equal(v.token.expires_at, 1767323045);
	csi_volume_release(&v);
	buf_release(&msg);
}

static void test_missing_fields(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f);
	f.r.volume_id = "";
	expect_invalid(&f, "volume_id is required");
	fixture_init(&f);
	f.r.volume_id = NULL;
	expect_invalid(&f, "volume_id is required");
	fixture_init(&f);
	f.r.target_path = "";
	expect_invalid(&f, "target_path is required");
	fixture_init(&f);
	f.r.has_capability = false;
	expect_invalid(&f, "volume_capability is required");
	fixture_init(&f);
	f.r.access_type = CSI_ACCESS_UNSET;
	expect_invalid(&f, "no access_type");
	fixture_init(&f);
	f.r.has_access_mode = false;
	expect_invalid(&f, "access_mode is required");
	fixture_init(&f);
	f.r.access_mode = CSI_MODE_UNKNOWN;
	expect_invalid(&f, "access_mode is required");
	/* Attributes left out (NULL) or empty. */
	static const struct {
		const char *key, *value, *words;
	} missing[] = {
	    {"source", NULL, "source is required"},
	    {"clientID", "", "clientID is required"},
	    {"tenantID", NULL, "tenantID is required"},
	    {"csi.storage.k8s.io/pod.namespace", NULL, "podInfoOnMount"},
	    {"csi.storage.k8s.io/serviceAccount.name", NULL, "podInfoOnMount"},
	    {SA_TOKENS_KEY, NULL, "tokenRequests"},
	};
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++)
		expect_ctx_invalid(missing[i].key, missing[i].value,
				   missing[i].words);
}

static void test_capabilities(void **state)
{
	struct fixture f;
	char msg[4096];

	(void)state;
	fixture_init(&f);
	f.r.access_type = CSI_ACCESS_BLOCK;
	expect_invalid(&f, "not a block device");
	fixture_init(&f);
	f.r.fs_type = "ext4";
	expect_invalid(&f, "fs_type 'ext4'");
	fixture_init(&f);
	f.r.fs_type = "fuse.spfs";
	assert_int_equal(check(&f, msg, sizeof(msg)), CSI_OK);
	fixture_init(&f);
	f.r.access_mode = 99;
	expect_invalid(&f, "unknown");
	/* Writers only with readonly; readers always. */
	for (int mode = 1; mode <= 7; mode++) {
		bool reader = mode == CSI_MODE_SINGLE_NODE_READER_ONLY ||
			      mode == CSI_MODE_MULTI_NODE_READER_ONLY;
		fixture_init(&f);
		f.r.access_mode = mode;
		f.r.readonly = true;
		assert_int_equal(check(&f, msg, sizeof(msg)), CSI_OK);
		f.r.readonly = false;
		if (reader)
			assert_int_equal(check(&f, msg, sizeof(msg)), CSI_OK);
		else
			expect_invalid(&f, "read-only");
	}
}

static void test_attribute_values(void **state)
{
	struct fixture f;
	char msg[4096];

	(void)state;
	static const struct {
		const char *key, *value, *words;
	} bad[] = {
	    {"clientId", CLIENT, "unknown volume attribute 'clientId'"},
	    {"clientID", "not-a-guid", "GUID"},
	    {"clientID", CLIENT ",auth=secret", "GUID"},
	    {"tenantID", "a/b", "tenantID"},
	    {"source", "http://contoso.sharepoint.com/sites/x", "https://"},
	    {"source", "https://x/sites/a,b", "commas"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_ctx_invalid(bad[i].key, bad[i].value, bad[i].words);
	fixture_init(&f);
	set_ctx(&f, "tenantID", "contoso.onmicrosoft.com");
	assert_int_equal(check(&f, msg, sizeof(msg)), CSI_OK);
	fixture_init(&f);
	set_ctx(&f, "source", "drive:b!abc");
	assert_int_equal(check(&f, msg, sizeof(msg)), CSI_OK);
	/* The plugin's default tenant stands in for a missing tenantID. */
	fixture_init(&f);
	set_ctx(&f, "tenantID", NULL);
	struct csi_policy with_tenant = {.kubelet_dir = "/var/lib/kubelet",
					 .default_tenant_id = TENANT};
	struct csi_volume v;
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(csi_publish_check(&f.r, &with_tenant, &v, &b), CSI_OK);
	assert_string_equal(v.tenant_id, TENANT);
	csi_volume_release(&v);
	buf_release(&b);
}

static void test_targets(void **state)
{
	struct fixture f;
	struct buf msg;

	(void)state;
	fixture_init(&f);
	f.r.target_path = "/etc/cron.d";
	expect_invalid(&f, "not below the kubelet");
	fixture_init(&f);
	f.r.target_path = "/var/lib/kubeletX/pods/u/mount";
	expect_invalid(&f, "not below the kubelet");
	fixture_init(&f);
	f.r.target_path = "/var/lib/kubelet/pods/../../../etc";
	expect_invalid(&f, "'..'");
	fixture_init(&f);
	f.r.target_path = "relative/path";
	expect_invalid(&f, "absolute");
	fixture_init(&f);
	f.r.target_path = "/var/lib/kubelet//pods/x";
	expect_invalid(&f, "empty");
	buf_init(&msg, 1024);
	assert_int_equal(csi_unpublish_check("v", "", &policy, &msg),
			 CSI_INVALID_ARGUMENT);
	assert_int_equal(csi_unpublish_check("", TARGET, &policy, &msg),
			 CSI_INVALID_ARGUMENT);
	assert_int_equal(csi_unpublish_check(NULL, TARGET, &policy, &msg),
			 CSI_INVALID_ARGUMENT);
	assert_int_equal(csi_unpublish_check("v", "/tmp/x", &policy, &msg),
			 CSI_INVALID_ARGUMENT);
	assert_int_equal(csi_unpublish_check("v", TARGET, &policy, &msg),
			 CSI_OK);
	buf_release(&msg);
}

static void test_token_places(void **state)
{
	static const char other[] =
	    "{\"api://AzureADTokenExchange\":{\"token\":\"aaa.bbb.ccc\"}}";
	struct fixture f;
	struct csi_volume v;
	struct buf msg;

	(void)state;
	buf_init(&msg, 4096);
	/* Kubernetes 1.35 serviceAccountTokenInSecrets: secrets first. */
	fixture_init(&f);
	f.secrets[0] = (struct csi_kv){SA_TOKENS_KEY, other};
	f.r.n_secrets = 1;
	assert_int_equal(csi_publish_check(&f.r, &policy, &v, &msg), CSI_OK);
	assert_string_equal(v.token.token, "aaa.bbb.ccc");
	assert_int_equal(v.token.expires_at, 0);
	csi_volume_release(&v);
	set_ctx(&f, SA_TOKENS_KEY, NULL);
	assert_int_equal(csi_publish_check(&f.r, &policy, &v, &msg), CSI_OK);
	csi_volume_release(&v);
	/* Another audience only: refused, and says which audience. */
	fixture_init(&f);
	set_ctx(&f, SA_TOKENS_KEY, "{\"vault\":{\"token\":\"a.b.c\"}}");
	expect_invalid(&f, "api://AzureADTokenExchange");
	fixture_init(&f);
	set_ctx(&f, SA_TOKENS_KEY, "not json");
	expect_invalid(&f, "not a JSON object");
	buf_release(&msg);
}

static void test_options(void **state)
{
	struct fixture f;
	struct csi_volume v;
	struct buf msg;

	(void)state;
	buf_init(&msg, 4096);
	fixture_init(&f);
	set_ctx(&f, "options", "poll_interval=60,cache_size=2G");
	f.flags[0] = "ro";
	f.flags[1] = "chunk_size=8M";
	f.r.n_mount_flags = 2;
	assert_int_equal(csi_publish_check(&f.r, &policy, &v, &msg), CSI_OK);
	/* Sorted, "ro" dropped: the same options in any order, one key. */
	assert_string_equal(v.options,
			    "cache_size=2G,chunk_size=8M,poll_interval=60");
	csi_volume_release(&v);

	static const char *const refused[] = {
	    "graph_url=https://evil.example",
	    "authority_host=https://evil.example/",
	    "cafile=/tmp/ca.pem",
	    "token_file=/etc/shadow",
	    "cache_dir=/",
	    "client_id=" CLIENT,
	    "auth=secret",
	    "allow_http",
	    "metrics=0.0.0.0:80",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		fixture_init(&f);
		set_ctx(&f, "options", refused[i]);
		expect_invalid(&f, "may not be set by a volume");
	}
	fixture_init(&f);
	set_ctx(&f, "options", "cache_size=2G/../x");
	expect_invalid(&f, "letters, digits and dots");
	fixture_init(&f);
	set_ctx(&f, "options", "cache_size");
	expect_invalid(&f, "letters, digits and dots");
	fixture_init(&f);
	set_ctx(&f, "options", "cache_size=1G");
	f.flags[0] = "cache_size=2G";
	f.r.n_mount_flags = 1;
	expect_invalid(&f, "given twice");
	buf_release(&msg);
}

static void key_of(struct fixture *f, char key[CSI_KEY_LEN + 1])
{
	struct csi_volume v;
	struct buf msg;

	buf_init(&msg, 4096);
	assert_int_equal(csi_publish_check(&f->r, &policy, &v, &msg), CSI_OK);
	csi_volume_key(&v, key);
	csi_volume_release(&v);
	buf_release(&msg);
}

static void test_sharing_key(void **state)
{
	char a[CSI_KEY_LEN + 1], b[CSI_KEY_LEN + 1];
	struct fixture f;

	(void)state;
	fixture_init(&f);
	key_of(&f, a);
	assert_int_equal(strlen(a), CSI_KEY_LEN);
	/* Another pod, target, volume id and token: the same daemon. */
	f.r.volume_id = "csi-9999";
	f.r.target_path = "/var/lib/kubelet/pods/u2/volumes/x/mount";
	set_ctx(&f, "csi.storage.k8s.io/pod.name", "app-other");
	set_ctx(&f, SA_TOKENS_KEY,
		"{\"api://AzureADTokenExchange\":{\"token\":\"x.y.z\"}}");
	key_of(&f, b);
	assert_string_equal(a, b);
	/* Any part of the identity, the library or the options: another. */
	const char *changes[][2] = {
	    {"csi.storage.k8s.io/serviceAccount.name", "writer"},
	    {"csi.storage.k8s.io/pod.namespace", "other"},
	    {"clientID", "11111111-2222-3333-4444-555555555556"},
	    {"tenantID", "contoso.onmicrosoft.com"},
	    {"source", "https://contoso.sharepoint.com/sites/Other"},
	    {"options", "poll_interval=60"},
	};
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		fixture_init(&f);
		set_ctx(&f, changes[i][0], changes[i][1]);
		key_of(&f, b);
		assert_string_not_equal(a, b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_complete_request),
	    cmocka_unit_test(test_missing_fields),
	    cmocka_unit_test(test_capabilities),
	    cmocka_unit_test(test_attribute_values),
	    cmocka_unit_test(test_targets),
	    cmocka_unit_test(test_token_places),
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_sharing_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
