/* SPDX-License-Identifier: MIT */
/*
 * Command-line parsing. Options use the mount(8) form so the same words work
 * on the command line, in `mount -t fuse.spfs` and in fstab.
 */
#include "config.h"

#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void options_init(struct options *o)
{
	memset(o, 0, sizeof(*o));
	o->log_level = LOG_INFO;
	o->log_format = LOG_FORMAT_TEXT;
	o->poll_interval = 30;
	o->read_timeout = 60;
	o->liveness_timeout = 30;
	o->chunk_size = 4ull << 20;
	o->readahead = 16ull << 20;
	o->small_file = 4ull << 20;
	o->attr_timeout = -1;
	o->entry_timeout = -1;
	o->uid = o->gid = o->umask = -1;
	auth_config_init(&o->auth);
}

void options_release(struct options *o)
{
	free(o->source);
	free(o->mountpoint);
	free(o->cafile);
	free(o->cache_dir);
	free(o->metrics);
	free(o->log_file);
	auth_config_release(&o->auth);
	options_init(o);
}

void options_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: spfs [-f] [-d] [-o OPTIONS] SOURCE MOUNTPOINT\n"
	    "       spfs --check [SOURCE] [-o OPTIONS]\n"
	    "       spfs [--help] [--version]\n"
	    "\n"
	    "spfs mounts a SharePoint Online document library as a read-only\n"
	    "filesystem through Microsoft Graph, authenticating with Azure\n"
	    "Workload Identity (no client secret).\n"
	    "\n"
	    "Files read with ranged downloads through a local sqlite cache;\n"
	    "writes fail with EROFS.\n"
	    "\n"
	    "SOURCE, as copied from the browser:\n"
	    "  https://HOST/sites/SITE                     the site's default "
	    "library\n"
	    "  https://HOST/sites/SITE/LIBRARY[/FOLDER..]  LIBRARY: title or "
	    "URL name\n"
	    "  https://HOST/teams/SITE/...                 team sites\n"
	    "  https://HOST[/LIBRARY[/FOLDER..]]           the tenant root "
	    "site\n"
	    "  drive:DRIVE_ID[:/FOLDER..]                  a library by drive "
	    "id\n"
	    "  https://HOST/.../Forms/AllItems.aspx?id=FOLDER  the folder a "
	    "library\n"
	    "                                              view shows\n"
	    "  https://HOST/:f:/r/PATH, https://HOST/:f:/s/...  a folder's "
	    "sharing\n"
	    "                                              link\n"
	    "\n"
	    "Modes:\n"
	    "  --check [SOURCE]   obtain an access token and report the "
	    "credential,\n"
	    "                     the tokens' claims (never the tokens), and "
	    "with\n"
	    "                     SOURCE the site, library and root listing; "
	    "exit 0\n"
	    "                     on success\n"
	    "  -f                 stay in the foreground\n"
	    "  -d                 foreground with FUSE debug output and debug "
	    "logs\n"
	    "  -h, --help         this help\n"
	    "  -V, --version      the version\n"
	    "\n"
	    "Mount options:\n"
	    "  cache_dir=DIR      metadata and content cache (default\n"
	    "                     /var/cache/spfs as root, "
	    "$XDG_CACHE_HOME/spfs\n"
	    "                     otherwise)\n"
	    "  cache=on|off       keep file content in the cache (default on;"
	    " off\n"
	    "                     streams without storing: one-shot jobs)\n"
	    "  cache_size=SIZE    content cache cap, e.g. 2G (default 10%% of "
	    "the\n"
	    "                     cache's filesystem, at least 1G, at most "
	    "half)\n"
	    "  chunk_size=SIZE    bytes per ranged download (default 4M; 64K "
	    "to 64M)\n"
	    "  readahead=SIZE     read-ahead window for sequential reads "
	    "(default 16M;\n"
	    "                     0 = off)\n"
	    "  small_file=SIZE    files up to this are fetched whole, in one "
	    "request\n"
	    "                     (default 4M, at most chunk_size)\n"
	    "  sheets             beside every workbook NAME.xlsx (.xlsm, "
	    ".xls) "
	    "a folder\n"
	    "                     NAME.xlsx.sheets/ with each worksheet as "
	    "CSV (needs\n"
	    "                     the cache; rules: man spfs, WORKBOOKS AS "
	    "CSV)\n"
	    "  poll_interval=S    seconds between change polls (default 30; 0 "
	    "= off)\n"
	    "  read_timeout=S     a read or listing the service cannot serve "
	    "fails\n"
	    "                     with EIO after at most S seconds of retrying "
	    "(default 60)\n"
	    "  attr_timeout=S, entry_timeout=S  kernel caching (default: "
	    "poll_interval)\n"
	    "  uid=N, gid=N, umask=OOO  ownership and modes (files 0444, "
	    "folders 0555)\n"
	    "  allow_other, default_permissions   as for any FUSE filesystem;\n"
	    "                     any of these five turns on "
	    "default_permissions,\n"
	    "                     so the modes are enforced\n"
	    "  token_file=PATH, authority_host=URL  instead of the AZURE_* "
	    "variables (fstab)\n"
	    "\n"
	    "Options (-o key=value[,key=value...]):\n"
	    "  auth=auto|workload|managed|certificate|secret\n"
	    "                     credential to use (default auto: a secret "
	    "or\n"
	    "                     certificate from the environment, then "
	    "workload\n"
	    "                     identity, then managed identity)\n"
	    "  client_id=ID       overrides AZURE_CLIENT_ID\n"
	    "  tenant_id=ID       overrides AZURE_TENANT_ID\n"
	    "  graph_url=URL      Graph base (default "
	    "https://graph.microsoft.com/v1.0;\n"
	    "                     the token scope follows from it: sovereign "
	    "clouds)\n"
	    "  scope=RESOURCE/.default  the token's scope, when Graph is "
	    "reached\n"
	    "                     through a gateway or another host (default:\n"
	    "                     graph_url's origin + /.default)\n"
	    "  cafile=PATH        PEM trust store for TLS (default: the "
	    "system's)\n"
	    "  imds_url=URL       instance metadata endpoint (default "
	    "http://169.254.169.254)\n"
	    "  imds_client_id=ID  user-assigned managed identity to ask IMDS "
	    "for\n"
	    "  cert=PATH          client certificate (PEM with the key, or see "
	    "cert_key)\n"
	    "  cert_key=PATH      private key of cert, when in a separate "
	    "file\n"
	    "  secret_file=PATH   file holding a client secret (developers "
	    "only)\n"
	    "  metrics=HOST:PORT  serve Prometheus metrics at /metrics and "
	    "the\n"
	    "                     probes /mounted, /ready (the root lists, "
	    "from\n"
	    "                     the network or the cache) and /healthz,\n"
	    "                     e.g. 127.0.0.1:9464\n"
	    "  liveness_timeout=S /healthz fails when a metadata operation "
	    "has\n"
	    "                     not returned for S seconds (default 30)\n"
	    "  log_level=error|warn|info|debug|trace   (default info)\n"
	    "  log_format=text|json                    (default text, to "
	    "stderr)\n"
	    "  log_file=PATH      append log lines to PATH (default: stderr; "
	    "once\n"
	    "                     detached, without -f, syslog)\n"
	    "  allow_http         accept http:// endpoints: for local tests "
	    "only\n"
	    "\n"
	    "Environment (injected by the AKS workload identity webhook):\n"
	    "  AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_AUTHORITY_HOST,\n"
	    "  AZURE_FEDERATED_TOKEN_FILE\n"
	    "Developer credentials: AZURE_CLIENT_SECRET, "
	    "AZURE_CLIENT_CERTIFICATE_PATH.\n"
	    "A client secret is never accepted on the command line.\n"
	    "\n"
	    "Report bugs at <%s>.\n",
	    PACKAGE_BUGREPORT);
}

int options_parse_size(const char *s, unsigned long long *out)
{
	char *end = NULL;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1] &&
	    !((end[1] == 'i' || end[1] == 'B') &&
	      (!end[2] || (end[1] == 'i' && end[2] == 'B' && !end[3]))))
		return -EINVAL;
	if (shift && v > (~0ull >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

static int set_str(char **field, const char *value)
{
	free(*field);
	*field = strdup(value);
	return *field ? 0 : -ENOMEM;
}

/* Applies one key[=value] option. */
static int apply_option(struct options *o, const char *key, const char *value,
			struct buf *msg)
{
	static const struct {
		const char *name;
		size_t offset;
	} strings[] = {
	    {"client_id", offsetof(struct options, auth.client_id)},
	    {"tenant_id", offsetof(struct options, auth.tenant_id)},
	    {"graph_url", offsetof(struct options, auth.graph_url)},
	    {"scope", offsetof(struct options, auth.scope)},
	    {"imds_url", offsetof(struct options, auth.imds_url)},
	    {"imds_client_id", offsetof(struct options, auth.imds_client_id)},
	    {"cert", offsetof(struct options, auth.cert_path)},
	    {"cert_key", offsetof(struct options, auth.cert_key_path)},
	    {"secret_file", offsetof(struct options, auth.secret_file)},
	    {"cafile", offsetof(struct options, cafile)},
	    {"cache_dir", offsetof(struct options, cache_dir)},
	    {"metrics", offsetof(struct options, metrics)},
	    {"log_file", offsetof(struct options, log_file)},
	    {"token_file", offsetof(struct options, auth.token_file)},
	    {"authority_host", offsetof(struct options, auth.authority_host)},
	};
	static const struct {
		const char *name;
		size_t offset;
	} seconds[] = {
	    {"poll_interval", offsetof(struct options, poll_interval)},
	    {"attr_timeout", offsetof(struct options, attr_timeout)},
	    {"entry_timeout", offsetof(struct options, entry_timeout)},
	    {"read_timeout", offsetof(struct options, read_timeout)},
	    {"liveness_timeout", offsetof(struct options, liveness_timeout)},
	};
	/* What mount(8) and fstab pass along; spfs is read-only regardless. */
	static const char *const ignored[] = {
	    "rw",	"ro",	   "dev",    "nodev",	 "suid",
	    "nosuid",	"exec",	   "noexec", "atime",	 "noatime",
	    "relatime", "auto",	   "noauto", "user",	 "nouser",
	    "users",	"_netdev", "nofail", "defaults",
	};

	if (strcmp(key, "client_secret") == 0 || strcmp(key, "secret") == 0) {
		buf_appendf(msg,
			    "-o %s: a client secret is never accepted on the "
			    "command line, where "
			    "other users can read it (ps, /proc) and shells "
			    "record it; use "
			    "AZURE_CLIENT_SECRET or -o secret_file=PATH, or "
			    "better, workload identity",
			    key);
		return -EINVAL;
	}
	if (strcmp(key, "allow_http") == 0 && !value) {
		o->auth.allow_http = true;
		return 0;
	}
	if (strcmp(key, "allow_other") == 0 && !value) {
		o->allow_other = true;
		return 0;
	}
	if (strcmp(key, "default_permissions") == 0 && !value) {
		o->default_permissions = true;
		return 0;
	}
	if (strcmp(key, "sheets") == 0 && !value) {
		o->sheets = true;
		return 0;
	}
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		if (strcmp(key, ignored[i]) == 0 && !value)
			return 0;
	if (strcmp(key, "cache") == 0) {
		if (value &&
		    (strcmp(value, "on") == 0 || strcmp(value, "off") == 0)) {
			o->cache_off = strcmp(value, "off") == 0;
			return 0;
		}
		buf_appendf(msg, "-o cache=%s: expected on or off",
			    value ? value : "");
		return -EINVAL;
	}
	static const struct {
		const char *name;
		size_t offset;
		unsigned long long min, max;
	} sizes[] = {
	    {"cache_size", offsetof(struct options, cache_size), 1ull << 20,
	     ~0ull},
	    {"chunk_size", offsetof(struct options, chunk_size), 64ull << 10,
	     64ull << 20},
	    {"readahead", offsetof(struct options, readahead), 0, 1ull << 30},
	    {"small_file", offsetof(struct options, small_file), 0,
	     64ull << 20},
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned long long v;
		if (strcmp(key, sizes[i].name) != 0)
			continue;
		if (options_parse_size(value, &v) != 0 || v < sizes[i].min ||
		    v > sizes[i].max) {
			buf_appendf(msg,
				    "-o %s=%s: expected a size such as 512K, "
				    "4M or 2G (%llu to %llu bytes)",
				    key, value ? value : "", sizes[i].min,
				    sizes[i].max);
			return -EINVAL;
		}
		*(unsigned long long *)((char *)o + sizes[i].offset) = v;
		return 0;
	}
	for (size_t i = 0; i < sizeof(seconds) / sizeof(seconds[0]); i++) {
		if (strcmp(key, seconds[i].name) != 0)
			continue;
		char *end = NULL;
		double v = value ? strtod(value, &end) : -1;
		if (!value || !*value || *end || v < 0 || v > 86400) {
			buf_appendf(msg,
				    "-o %s=%s: expected seconds (0 to 86400)",
				    key, value ? value : "");
			return -EINVAL;
		}
		*(double *)((char *)o + seconds[i].offset) = v;
		return 0;
	}
	if (strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0 ||
	    strcmp(key, "umask") == 0) {
		char *end = NULL;
		int base = strcmp(key, "umask") == 0 ? 8 : 10;
		long v = value ? strtol(value, &end, base) : -1;
		if (!value || !*value || *end || v < 0 ||
		    (base == 8 && v > 0777) || v > 0x7fffffffL) {
			buf_appendf(msg, "-o %s=%s: expected a %s number", key,
				    value ? value : "",
				    base == 8 ? "octal" : "decimal");
			return -EINVAL;
		}
		*(strcmp(key, "uid") == 0   ? &o->uid
		  : strcmp(key, "gid") == 0 ? &o->gid
					    : &o->umask) = v;
		return 0;
	}
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		if (strcmp(key, strings[i].name) != 0)
			continue;
		if (!value || !*value) {
			buf_appendf(msg, "-o %s needs a value (-o %s=...)", key,
				    key);
			return -EINVAL;
		}
		return set_str((char **)((char *)o + strings[i].offset), value);
	}
	if (strcmp(key, "auth") == 0) {
		if (value && auth_kind_parse(value, &o->auth.kind) == 0)
			return 0;
		buf_appendf(msg,
			    "-o auth=%s: expected auto, workload, managed, "
			    "certificate or secret",
			    value ? value : "");
		return -EINVAL;
	}
	if (strcmp(key, "log_level") == 0) {
		if (value && log_level_parse(value, &o->log_level) == 0)
			return 0;
		buf_appendf(msg,
			    "-o log_level=%s: expected error, warn, info, "
			    "debug or trace",
			    value ? value : "");
		return -EINVAL;
	}
	if (strcmp(key, "log_format") == 0) {
		if (value && log_format_parse(value, &o->log_format) == 0)
			return 0;
		buf_appendf(msg, "-o log_format=%s: expected text or json",
			    value ? value : "");
		return -EINVAL;
	}
	buf_appendf(msg, "unknown option -o %s (see spfs --help)", key);
	return -EINVAL;
}

/* Splits "a=1,b,c=x" and applies each. */
static int apply_option_list(struct options *o, const char *list,
			     struct buf *msg)
{
	char *copy = strdup(list);
	char *save = NULL;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (char *item = strtok_r(copy, ",", &save); item && !err;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (eq)
			*eq = '\0';
		err = apply_option(o, item, eq ? eq + 1 : NULL, msg);
	}
	/* The list may have carried a secret the user should not have put
	 * there; do not leave it in freed memory. */
	explicit_bzero(copy, strlen(list));
	free(copy);
	return err;
}

int options_parse(struct options *o, int argc, char **argv, struct buf *msg)
{
	int err = 0;

	for (int i = 1; i < argc && !err; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			o->help = true;
		} else if (strcmp(a, "-V") == 0 ||
			   strcmp(a, "--version") == 0) {
			o->version = true;
		} else if (strcmp(a, "--check") == 0) {
			o->check = true;
		} else if (strcmp(a, "-f") == 0) {
			o->foreground = true;
		} else if (strcmp(a, "-d") == 0) {
			o->debug = true;
			o->foreground = true;
			o->log_level = LOG_DEBUG;
		} else if (strcmp(a, "-o") == 0) {
			if (i + 1 >= argc) {
				buf_appendf(msg, "-o needs an option list");
				return -EINVAL;
			}
			err = apply_option_list(o, argv[++i], msg);
		} else if (strncmp(a, "-o", 2) == 0) {
			err = apply_option_list(o, a + 2, msg);
		} else if (a[0] == '-' && a[1] != '\0') {
			buf_appendf(
			    msg, "unknown argument '%s' (see spfs --help)", a);
			return -EINVAL;
		} else if (!o->source) {
			err = set_str(&o->source, a);
		} else if (!o->mountpoint) {
			err = set_str(&o->mountpoint, a);
		} else {
			buf_appendf(
			    msg, "unexpected argument '%s' (see spfs --help)",
			    a);
			return -EINVAL;
		}
	}
	if (!err && o->sheets && o->cache_off) {
		buf_appendf(msg, "-o sheets keeps the CSVs in the content "
				 "cache: it cannot be combined with "
				 "-o cache=off");
		return -EINVAL;
	}

	/* Without default_permissions the kernel checks no mode at all:
	 * uid=, gid= and umask= would restrict nothing, and allow_other would
	 * open every file to every user. */
	if (o->allow_other || o->uid >= 0 || o->gid >= 0 || o->umask >= 0)
		o->default_permissions = true;
	return err;
}
