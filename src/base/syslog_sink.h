/* SPDX-License-Identifier: MIT */
#ifndef SPFS_BASE_SYSLOG_SINK_H
#define SPFS_BASE_SYSLOG_SINK_H

/*
 * syslog(3) for log.c, in a file of its own: <syslog.h> defines LOG_INFO
 * and LOG_DEBUG as macros, which would collide with log.h's levels.
 * Internal to src/base.
 */

/* openlog(ident, LOG_PID, LOG_DAEMON). ident must outlive the process. */
void syslog_sink_open(const char *ident);
/* One message at log.h's level (0 error .. 4 trace), mapped to syslog's
 * priorities. */
void syslog_sink_write(int level, const char *msg);

#endif
