/* SPDX-License-Identifier: MIT */
/* `vmferry list`: every local copy under the cache base, from its plain
 * lifecycle record (no key needed) and a read-only look at its LMDB
 * environment for the unsynced changes. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

#include "../fusefs/cache.h"
#include "../fusefs/lifecycle.h"
#include "../fusefs/local.h"
#include "commands.h"
#include "list.h"
#include "toolopts.h"

struct listing {
	bool json;
	bool remote;
	const char *server;
	json_t *arr;
	unsigned n;
};

static int list_one(const char *dir, void *opaque)
{
	struct listing *l = opaque;
	struct lifecycle lc;
	enum lifecycle_state st;
	char size[32], cached[16], left[32], unsynced[24];
	uint64_t dirty = 0;
	bool in_use = local_in_use(dir), have_dirty;
	int64_t secs;
	int r;

	r = lifecycle_read(dir, &lc);
	if (r < 0) {
		memset(&lc, 0, sizeof(lc));
		snprintf(lc.url, sizeof(lc.url), "? (%s)", dir);
	}
	have_dirty = cache_peek_dirty(dir, &dirty) == 0;
	st = lifecycle_check(&lc, now_wall(), &secs);
	l->n++;
	if (l->json) {
		json_t *o = json_pack(
		    "{s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:b, s:s}",
		    "url", lc.url, "dir", dir, "version",
		    (json_int_t)lc.version, "size", (json_int_t)lc.image_size,
		    "blocks_data", (json_int_t)lc.blocks_data, "blocks_cached",
		    (json_int_t)lc.blocks_cached, "ephemeral", lc.ephemeral,
		    "expires", (json_int_t)lc.expires, "max_offline",
		    (json_int_t)lc.max_offline_s, "mounted", in_use, "state",
		    r < 0		      ? "unknown"
		    : st == LIFECYCLE_OK      ? "valid"
		    : st == LIFECYCLE_EXPIRED ? "expired"
					      : "offline-too-long");

		if (o && have_dirty)
			json_object_set_new(o, "unsynced_blocks",
					    json_integer((json_int_t)dirty));
		if (o && secs != INT64_MAX)
			json_object_set_new(o, "time_left",
					    json_integer((json_int_t)secs));
		return o && json_array_append_new(l->arr, o) == 0 ? 0 : -ENOMEM;
	}
	format_bytes(lc.image_size, size, sizeof(size));
	if (lc.blocks_data)
		snprintf(cached, sizeof(cached), "%.0f%%",
			 100.0 * (double)lc.blocks_cached /
			     (double)lc.blocks_data);
	else
		snprintf(cached, sizeof(cached), "-");
	if (have_dirty)
		snprintf(unsynced, sizeof(unsynced), "%" PRIu64, dirty);
	else
		snprintf(unsynced, sizeof(unsynced), "?");
	lifecycle_format_left(secs, left, sizeof(left));
	printf(
	    "%-40s %7" PRIu64 " %10s %6s %8s %-9s %-10s %s%s\n", lc.url,
	    lc.version, size, cached, unsynced,
	    lc.ephemeral ? "ephemeral" : "keep", left, in_use ? "mounted" : "-",
	    r == 0 && secs < LIFECYCLE_WARN_S ? "  WARNING: expires soon" : "");
	return 0;
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmferry list [--cache DIR] [--json]\n"
	    "       vmferry list --remote [--server URL] [--json] [--token-file "
	    "FILE]\n"
	    "                    [--cacert FILE] [--pin-sha256 B64] "
	    "[--insecure]\n"
	    "\n"
	    "Show every local copy: image URL, version, size, share of its\n"
	    "data cached, blocks changed and not yet synced, keep or\n"
	    "ephemeral, time left before it expires, and whether it is\n"
	    "mounted.  A warning marks a copy with less than a day left.\n"
	    "\n"
	    "With --remote, show the images on the server (--server URL, else\n"
	    "$VMFERRY_SERVER) the token can read, and where each runs: idle,\n"
	    "running locally (which client, since when), or on the server.\n");
}

static int list_opt(int c, const char *arg, void *opaque)
{
	struct listing *l = opaque;

	if (c == 256)
		l->json = true;
	else if (c == 257)
		l->remote = true;
	else
		l->server = arg;
	return 0;
}

int cmd_list(int argc, char **argv)
{
	static const struct option own[] = {
	    {"json", no_argument, NULL, 256},
	    {"remote", no_argument, NULL, 257},
	    {"server", required_argument, NULL, 258},
	    {NULL, 0, NULL, 0},
	};
	struct tool_opts o = {.want = TOOL_OPT_CACHE | TOOL_OPT_SERVER};
	struct listing l = {0};
	const char *cache;
	char base[4096];
	int r;

	r = tool_parse(argc, argv, &o, own, list_opt, &l, usage);
	if (r >= 0)
		return r;
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (l.remote)
		return list_remote(
		    &o, l.server ? l.server : getenv("VMFERRY_SERVER"), l.json);
	cache = o.cache;
	r = local_cache_base(cache, base, sizeof(base));
	if (r < 0) {
		log_error_errno(r, "cache directory: %m (use --cache DIR)");
		return 1;
	}
	if (l.json) {
		l.arr = json_array();
		if (!l.arr)
			return 1;
	} else {
		printf("%-40s %7s %10s %6s %8s %-9s %-10s %s\n", "IMAGE",
		       "VERSION", "SIZE", "CACHED", "UNSYNCED", "MODE", "LEFT",
		       "STATE");
	}
	r = local_each_copy(base, list_one, &l);
	if (r < 0) {
		json_decref(l.arr);
		log_error_errno(r, "listing %s: %m", base);
		return 1;
	}
	if (l.json) {
		json_t *out = json_pack("{s:o}", "copies", l.arr);

		if (!out || json_dumpf(out, stdout, JSON_INDENT(2)) < 0)
			return 1;
		putchar('\n');
		json_decref(out);
	} else if (l.n == 0) {
		printf("(no local copies in %s)\n", base);
	}
	return 0;
}
