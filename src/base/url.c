/* SPDX-License-Identifier: MIT */
/*
 * URL string helpers; see url.h for the single encoding rule.
 *
 * Design: everything is byte-wise and locale-free (no isalpha() surprises
 * under a Turkish locale). The parser is deliberately narrow: it accepts the
 * absolute http(s) URLs spfs is configured with or handed by Graph, and
 * refuses what it cannot represent faithfully (userinfo, whitespace or
 * control bytes, odd host characters) rather than guessing. Joins and the
 * scope derivation never percent-decode, so what the user configured is what
 * goes on the wire.
 */
#include "config.h"

#include "base/url.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static int encode_bytes(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	int err = 0;

	for (size_t i = 0; i < len && !err; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c)) {
			err = buf_append(out, &s[i], 1);
		} else {
			char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
			err = buf_append(out, esc, 3);
		}
	}
	return err;
}

int url_form_encode(struct buf *out, const char *s)
{
	return encode_bytes(out, s, strlen(s));
}

int url_form_add(struct buf *out, const char *key, const char *value)
{
	int err = 0;

	if (out->len)
		err = buf_append(out, "&", 1);
	err = err ? err : url_form_encode(out, key);
	err = err ? err : buf_append(out, "=", 1);
	err = err ? err : url_form_encode(out, value);
	return err;
}

int url_path_segment_encode(struct buf *out, const char *segment, size_t len)
{
	return encode_bytes(out, segment, len);
}

char *url_join(const char *base, const char *const *parts, size_t nparts)
{
	struct buf b;
	size_t n = strlen(base);
	int err;

	buf_init(&b, 64 * 1024);
	while (n > 0 && base[n - 1] == '/')
		n--;
	err = buf_append(&b, base, n);
	for (size_t i = 0; i < nparts && !err; i++) {
		const char *p = parts[i];
		size_t len = strlen(p);
		while (len && *p == '/') {
			p++;
			len--;
		}
		while (len && p[len - 1] == '/')
			len--;
		if (!len)
			continue;
		err = buf_append(&b, "/", 1);
		err = err ? err : buf_append(&b, p, len);
	}
	if (err) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int url_percent_decode(const char *s, size_t len, char **out)
{
	char *d = malloc(len + 1);
	size_t o = 0;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= len)
				goto bad;
			int hi = hexval(s[i + 1]);
			int lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0')
			goto bad;
		d[o++] = c;
	}
	d[o] = '\0';
	*out = d;
	return 0;
bad:
	free(d);
	return -EINVAL;
}

void url_parts_release(struct url_parts *p)
{
	free(p->scheme);
	free(p->host);
	free(p->path);
	free(p->query);
	memset(p, 0, sizeof(*p));
}

/* Bytes that may never appear anywhere in a URL we accept. */
static int url_bytes_ok(const char *url)
{
	for (const unsigned char *q = (const unsigned char *)url; *q; q++)
		if (*q <= 0x20 || *q >= 0x7f || *q == '\\')
			return 0;
	return 1;
}

/* reg-name hosts: letters, digits, '-', '.', '_' ('~' is legal but no
 * resolver wants it); IPv6 literals: hex digits, ':' and '.' (v4-mapped). */
static int host_ok(const char *h, size_t n, int v6)
{
	int colons = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		if (v6) {
			if (c == ':')
				colons++;
			else if (hexval((char)c) < 0 && c != '.')
				return 0;
		} else if (!unreserved(c) || c == '~') {
			return 0;
		}
	}
	return !v6 || colons >= 2;
}

int url_parse(const char *url, struct url_parts *out)
{
	const char *p, *host, *host_end, *rest;
	int err = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!url || !url_bytes_ok(url))
		return -EINVAL;
	if (strncasecmp(url, "https://", 8) == 0) {
		out->scheme = strdup("https");
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		out->scheme = strdup("http");
		p = url + 7;
	} else {
		return -EINVAL;
	}
	if (!out->scheme)
		return -ENOMEM;

	size_t auth_len = strcspn(p, "/?#");
	const char *auth_end = p + auth_len;
	if (memchr(p, '@', auth_len))
		goto out; /* credentials in URLs: refuse rather than leak */
	if (*p == '[') {
		host = p + 1;
		host_end = memchr(host, ']', (size_t)(auth_end - host));
		if (!host_end)
			goto out;
		rest = host_end + 1;
	} else {
		host = p;
		host_end = memchr(p, ':', auth_len);
		if (!host_end)
			host_end = auth_end;
		rest = host_end;
	}
	if (host_end == host ||
	    !host_ok(host, (size_t)(host_end - host), *p == '['))
		goto out;
	if (rest < auth_end) {
		if (*rest != ':' || rest + 1 == auth_end)
			goto out;
		long port = 0;
		for (const char *q = rest + 1; q < auth_end; q++) {
			if (*q < '0' || *q > '9')
				goto out;
			port = port * 10 + (*q - '0');
			if (port > 65535)
				goto out;
		}
		if (port == 0 || rest[1] == '0')
			goto out; /* port 0, or a leading zero ("08443") */
		out->port = (int)port;
	}
	err = -ENOMEM;
	out->host = strndup(host, (size_t)(host_end - host));
	if (!out->host)
		goto out;
	for (char *h = out->host; *h; h++)
		if (*h >= 'A' && *h <= 'Z')
			*h = (char)(*h - 'A' + 'a');

	const char *path = auth_end;
	size_t path_len = strcspn(path, "?#");
	out->path = path_len ? strndup(path, path_len) : strdup("/");
	if (!out->path)
		goto out;
	if (path[path_len] == '?') {
		const char *q = path + path_len + 1;
		out->query = strndup(q, strcspn(q, "#"));
		if (!out->query)
			goto out;
	}
	err = 0;
out:
	if (err)
		url_parts_release(out);
	return err;
}

/* scheme://host[:port] of a URL, or NULL. The scheme's default port is
 * dropped: "https://graph.microsoft.com:443" is not a resource identifier
 * Entra knows, "https://graph.microsoft.com" is. */
static char *origin_of(const char *url)
{
	struct url_parts p;
	char *s = NULL;

	if (url_parse(url, &p) != 0)
		return NULL;
	int v6 = strchr(p.host, ':') != NULL;
	int dflt = strcmp(p.scheme, "https") == 0 ? 443 : 80;
	size_t n = strlen(p.scheme) + strlen(p.host) + 16;
	s = malloc(n);
	if (s) {
		if (p.port && p.port != dflt)
			snprintf(s, n, "%s://%s%s%s:%d", p.scheme,
				 v6 ? "[" : "", p.host, v6 ? "]" : "", p.port);
		else
			snprintf(s, n, "%s://%s%s%s", p.scheme, v6 ? "[" : "",
				 p.host, v6 ? "]" : "");
	}
	url_parts_release(&p);
	return s;
}

char *url_scope_for_resource(const char *graph_url)
{
	char *origin = origin_of(graph_url);
	const char *parts[] = {".default"};
	char *scope;

	if (!origin)
		return NULL;
	scope = url_join(origin, parts, 1);
	free(origin);
	return scope;
}

char *url_resource_for(const char *graph_url)
{
	return origin_of(graph_url);
}
