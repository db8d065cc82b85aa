/* SPDX-License-Identifier: MIT */
/*
 * spfs entry point: wiring only. Parses the command line, builds the layers
 * bottom-up, runs, tears down top-down. In this version only --help and
 * --version are implemented; the mount arrives with the auth, browse and read
 * issues, and the help text says so rather than pretending.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

static void print_usage(FILE *out)
{
	fprintf(out,
		"Usage: spfs [--help] [--version]\n"
		"\n"
		"spfs mounts a SharePoint Online document library as a read-only\n"
		"filesystem, authenticating with Azure Workload Identity (no client\n"
		"secret), through Microsoft Graph.\n"
		"\n"
		"This is an early build: the credential, browsing and read paths are\n"
		"not implemented yet, so spfs cannot mount anything in this version.\n"
		"\n"
		"Options:\n"
		"  -h, --help      show this help and exit\n"
		"  -V, --version   show the version and exit\n"
		"\n"
		"Report bugs at <%s>.\n",
		PACKAGE_BUGREPORT);
}

int main(int argc, char **argv)
{
	if (argc == 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		print_usage(stdout);
		return 0;
	}
	if (argc == 2 &&
	    (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
		printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
		return 0;
	}
	if (argc > 1)
		fprintf(stderr,
			"spfs: '%s': mounting is not implemented in spfs %s yet\n",
			argv[1], PACKAGE_VERSION);
	print_usage(stderr);
	return 2;
}
