/* SPDX-License-Identifier: MIT */
#ifndef SPFS_CHECK_H
#define SPFS_CHECK_H

/*
 * `spfs --check`: the diagnostics a person runs in a pod before mounting
 * (also usable as an init container). Prints a report to out, never a token.
 * Returns the process exit status: 0 when an access token was obtained.
 */

#include <stdio.h>

#include "options.h"

int check_run(struct options *o, FILE *out);

#endif
