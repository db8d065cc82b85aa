/* SPDX-License-Identifier: MIT */
/*
 * The syslog end of the log sink: a detached daemon (fstab, mount -t
 * fuse.spfs) has no stderr, so its lines go to syslog, which the journal
 * reads on systemd hosts. Kept apart from log.c for <syslog.h>'s macros.
 */
#include "config.h"

#include "base/syslog_sink.h"

#include <syslog.h>

void syslog_sink_open(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void syslog_sink_write(int level, const char *msg)
{
	static const int priority[] = {LOG_ERR, LOG_WARNING, LOG_INFO,
				       LOG_DEBUG, LOG_DEBUG};

	syslog(level >= 0 && level < 5 ? priority[level] : LOG_INFO, "%s", msg);
}
