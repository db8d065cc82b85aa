/* SPDX-License-Identifier: MIT */
/* Links from pages: graph_link_ours() says yes only for a URL that libcurl
 * would send to the Graph origin (scheme, host and port), with no userinfo,
 * whatever bytes the service puts in it. The origin is read here with
 * libcurl's URL API directly, as the request would be made. */
#include "config.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "graph/graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE "https://graph.microsoft.com/v1.0"

/* What libcurl makes of url: it must be https://graph.microsoft.com:443
 * without a user for the answer "ours" to be right. */
static int curl_says_ours(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
	int ours = 0;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ==
		CURLUE_OK &&
	    curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER)
		ours = strcasecmp(scheme, "https") == 0 &&
		       strcasecmp(host, "graph.microsoft.com") == 0 &&
		       strcmp(port, "443") == 0;
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_url_cleanup(u);
	return ours;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct graph *g;
	static const struct graph_config cfg = {.base_url = BASE};
	char *url = malloc(size + 1);
	int err;

	if (!g) {
		log_set_level(LOG_ERROR);
		g = graph_new(NULL, NULL, &cfg, &err);
		/* The base's own links are ours, or nothing is tested. */
		if (!g || !graph_link_ours(g, BASE "/drives/b!x/root/delta"))
			abort();
	}
	if (!url)
		abort();
	memcpy(url, data, size);
	url[size] = '\0';
	int ours = graph_link_ours(g, url);
	/* As a C string, as callers pass it (links with a NUL are refused
	 * before they get here). */
	if (ours && !curl_says_ours(url))
		abort();
	free(url);
	return 0;
}
