/* SPDX-License-Identifier: MIT */
/* `vmferry list --remote`: the server's images the token can read, and
 * where each runs, from its lease: idle, running locally (on which
 * client, since when), running on the server. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cleanup.h"
#include "log.h"
#include "util.h"

#include "../fusefs/crypto.h"
#include "../fusefs/fetch.h"
#include "../fusefs/remote.h"
#include "list.h"

/* "idle", "local" or "remote". */
static const char *state_of(const struct remote_image *img)
{
	if (!img->leased)
		return "idle";
	return strcmp(img->lease_where, VMF_LEASE_WHERE_REMOTE) == 0 ? "remote"
								     : "local";
}

static void print_one(const struct remote_entry *e)
{
	const struct remote_image *img = &e->img;
	const char *st = state_of(img);
	char size[32], since[32];

	format_bytes(img->size, size, sizeof(size));
	format_utc(img->lease_since, since, sizeof(since));
	printf("%-24s %7" PRIu64 " %10s  ", e->name, img->version, size);
	if (strcmp(st, "idle") == 0)
		printf("idle\n");
	else if (strcmp(st, "remote") == 0)
		printf("running on the server (started by %s, since %s)\n",
		       img->lease_holder, since);
	else
		printf("running locally (%s, since %s)\n", img->lease_holder,
		       since);
}

static json_t *json_one(const struct remote_entry *e)
{
	const struct remote_image *img = &e->img;
	json_t *o = json_pack("{s:s, s:I, s:I, s:s}", "name", e->name,
			      "version", (json_int_t)img->version, "size",
			      (json_int_t)img->size, "state", state_of(img));

	if (o && img->leased &&
	    json_object_update_new(
		o, json_pack("{s:s, s:I, s:I}", "holder", img->lease_holder,
			     "since", (json_int_t)img->lease_since, "expires",
			     (json_int_t)img->lease_expires)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int list_remote(struct tool_opts *o, const char *server, bool json)
{
	_cleanup_free_ struct remote_entry *list = NULL;
	struct remote_url u;
	struct fetch *f = NULL;
	char *token = NULL, why[256] = "", url[600];
	const char *bad;
	size_t n = 0;
	json_t *arr = NULL;
	int r;

	if (!server || !*server) {
		log_error("--remote: which server? give --server URL or set "
			  "$VMFERRY_SERVER");
		return 2;
	}
	/* remote_parse_url() wants an image: check the base with one. */
	snprintf(url, sizeof(url), "%s/x", server);
	if (remote_parse_url(url, &u, &bad) < 0) {
		log_error("bad server URL \"%s\": %s", server, bad);
		return 2;
	}
	r = tool_connect(o, u.base, &f, &token);
	if (r < 0)
		return 1;
	r = remote_list_images(f, &list, &n, why);
	fetch_free(f);
	crypto_cleanse(token, strlen(token));
	free(token);
	if (r < 0) {
		log_error("%s: %s (%s)", u.base, remote_strerror(r), why);
		return 1;
	}
	if (json)
		arr = json_array();
	else
		printf("%-24s %7s %10s  %s\n", "IMAGE", "VERSION", "SIZE",
		       "STATE");
	for (size_t i = 0; i < n; i++) {
		if (!json)
			print_one(&list[i]);
		else if (!arr || json_array_append_new(arr, json_one(&list[i])))
			r = -ENOMEM;
	}
	if (json) {
		json_t *out = json_pack("{s:o}", "images", arr);

		if (r < 0 || !out ||
		    json_dumpf(out, stdout, JSON_INDENT(2)) < 0)
			r = log_oom();
		json_decref(out);
		putchar('\n');
	}
	return r < 0 ? 1 : 0;
}
