/* SPDX-License-Identifier: MIT */
/* The mounter's state directory: permissions, atomic replacement, what a
 * restarted mounter reads back, and removal. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csi/state.h"

#define KEY "0123456789abcdef0123456789abcdef"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/spfs-state-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	strcat(dir, "/state");
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)strlen(dir) - 6, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static char *slurp(const char *path)
{
	static char data[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(data, 1, sizeof(data) - 1, f);
	data[n] = '\0';
	fclose(f);
	return data;
}

static void test_layout_and_modes(void **state)
{
	char p[256];

	(void)state;
	assert_int_equal(state_init(dir), 0);
	assert_int_equal(mode_of(dir), 0700);
	snprintf(p, sizeof(p), "%s/daemons", dir);
	assert_int_equal(mode_of(p), 0700);
	snprintf(p, sizeof(p), "%s/targets", dir);
	assert_int_equal(mode_of(p), 0700);
	/* A directory someone opened up is closed again. */
	chmod(dir, 0755);
	assert_int_equal(state_init(dir), 0);
	assert_int_equal(mode_of(dir), 0700);
}

static void test_atomic_write(void **state)
{
	char p[256];

	(void)state;
	assert_int_equal(state_init(dir), 0);
	snprintf(p, sizeof(p), "%s/file", dir);
	assert_int_equal(state_write_atomic(p, "one", 3, 0600), 0);
	assert_string_equal(slurp(p), "one");
	assert_int_equal(mode_of(p), 0600);
	assert_int_equal(state_write_atomic(p, "two!", 4, 0644), 0);
	assert_string_equal(slurp(p), "two!");
	assert_int_equal(mode_of(p), 0644);
	/* No temporary file is left behind. */
	DIR *d = opendir(dir);
	struct dirent *e;
	int files = 0;
	while ((e = readdir(d)))
		files += e->d_name[0] != '.';
	closedir(d);
	assert_int_equal(files, 3); /* daemons, targets, file */
}

struct loaded {
	struct csi_volume v;
	struct state_target t;
	int daemons, targets;
};

static void daemon_seen(void *ctx, const char *key, struct csi_volume *v)
{
	struct loaded *l = ctx;

	assert_string_equal(key, KEY);
	l->v = *v; /* takes everything */
	csi_volume_init(v);
	l->daemons++;
}

static void target_seen(void *ctx, struct state_target *t)
{
	struct loaded *l = ctx;

	l->t = *t;
	memset(t, 0, sizeof(*t));
	l->targets++;
}

static void test_daemon_round_trip(void **state)
{
	struct csi_volume v;
	struct loaded back;
	struct sa_token tok = {.token = "aa.bb.cc", .expires_at = 5};
	char p[256];

	(void)state;
	assert_int_equal(state_init(dir), 0);
	csi_volume_init(&v);
	v.source = "https://contoso.sharepoint.com/sites/Finance";
	v.client_id = "11111111-2222-3333-4444-555555555555";
	v.tenant_id = "contoso.onmicrosoft.com";
	v.namespace_ = "data";
	v.service_account = "reader";
	v.options = "cache_size=2G";
	assert_int_equal(state_save_daemon(dir, KEY, &v), 0);
	assert_int_equal(state_write_token(dir, KEY, &tok), 0);
	assert_int_equal(state_write_pid(dir, KEY, 4242), 0);
	assert_int_equal(state_read_pid(dir, KEY), 4242);

	snprintf(p, sizeof(p), "%s/daemons/%s", dir, KEY);
	assert_int_equal(mode_of(p), 0700);
	snprintf(p, sizeof(p), "%s/daemons/%s/token", dir, KEY);
	assert_int_equal(mode_of(p), 0600);
	assert_string_equal(slurp(p), "aa.bb.cc");
	snprintf(p, sizeof(p), "%s/daemons/%s/cache", dir, KEY);
	assert_int_equal(mode_of(p), 0700);
	snprintf(p, sizeof(p), "%s/daemons/%s/mnt", dir, KEY);
	assert_int_equal(mode_of(p), 0);
	/* The record never holds the token. */
	snprintf(p, sizeof(p), "%s/daemons/%s/volume.json", dir, KEY);
	assert_null(strstr(slurp(p), "aa.bb.cc"));

	struct state_target t = {.volume_id = "csi-1",
				 .target = "/var/lib/kubelet/pods/u/mount",
				 .key = KEY,
				 .readonly = true};
	assert_int_equal(state_save_target(dir, &t), 0);
	/* Garbage beside the records is skipped. */
	snprintf(p, sizeof(p), "%s/daemons/not-a-key", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/targets/broken.json", dir);
	assert_int_equal(state_write_atomic(p, "{", 1, 0600), 0);

	memset(&back, 0, sizeof(back));
	csi_volume_init(&back.v);
	assert_int_equal(state_load(dir, daemon_seen, target_seen, &back), 0);
	assert_int_equal(back.daemons, 1);
	assert_int_equal(back.targets, 1);
	assert_string_equal(back.v.source, v.source);
	assert_string_equal(back.v.client_id, v.client_id);
	assert_string_equal(back.v.tenant_id, v.tenant_id);
	assert_string_equal(back.v.namespace_, v.namespace_);
	assert_string_equal(back.v.service_account, v.service_account);
	assert_string_equal(back.v.options, v.options);
	assert_string_equal(back.v.token.token, "aa.bb.cc");
	assert_string_equal(back.t.volume_id, "csi-1");
	assert_string_equal(back.t.target, t.target);
	assert_string_equal(back.t.key, KEY);
	assert_true(back.t.readonly);
	state_target_release(&back.t);
	csi_volume_release(&back.v);

	assert_int_equal(state_remove_target(dir, t.target), 0);
	assert_int_equal(state_remove_target(dir, t.target), 0);
	assert_int_equal(state_remove_daemon(dir, KEY), 0);
	snprintf(p, sizeof(p), "%s/daemons/%s", dir, KEY);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(state_remove_daemon(dir, KEY), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_layout_and_modes, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_atomic_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_round_trip, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
