/* SPDX-License-Identifier: MIT */
/*
 * spfs entry point: wiring only. Parses the command line, resolves the
 * credential from the environment, then runs the requested mode. The mount
 * itself arrives with the browse and read features; until then spfs says so
 * instead of pretending.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "auth/auth.h"
#include "base/buf.h"
#include "base/log.h"
#include "check.h"
#include "options.h"

static const char *real_getenv(const char *name) { return getenv(name); }

int main(int argc, char **argv)
{
	struct options o;
	struct buf msg;
	int status = 2;

	options_init(&o);
	buf_init(&msg, 4096);
	if (options_parse(&o, argc, argv, &msg) != 0) {
		fprintf(stderr, "spfs: %s\n", buf_str(&msg));
		goto out;
	}
	log_set_level(o.log_level);
	log_set_format(o.log_format);
	if (o.help) {
		options_usage(stdout);
		status = 0;
		goto out;
	}
	if (o.version) {
		printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
		status = 0;
		goto out;
	}
	if (!o.check) {
		fprintf(stderr,
			"spfs: mounting is not implemented in spfs %s yet; "
			"`spfs --check` tests the credential (see spfs --help)\n",
			PACKAGE_VERSION);
		goto out;
	}
	if (auth_config_resolve(&o.auth, real_getenv, &msg) != 0) {
		fprintf(stderr, "spfs: %s\n", buf_str(&msg));
		status = 1;
		goto out;
	}
	log_info("credential: %s (%s)", auth_kind_description(o.auth.kind),
		 o.auth.why);
	status = check_run(&o, stdout);
out:
	buf_release(&msg);
	options_release(&o);
	return status;
}
