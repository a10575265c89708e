/* SPDX-License-Identifier: MIT */
/* `vmferry status MOUNTPOINT [--watch]`: ask a mount over its control
 * socket how far it is. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "log.h"
#include "progress.h"
#include "util.h"

#include "../fusefs/ctl.h"
#include "../fusefs/lifecycle.h"
#include "commands.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: vmferry status [--watch] [--json] MOUNTPOINT\n"
		     "\n"
		     "Show the image, version, blocks cached of total, bytes "
		     "fetched and rate.\n"
		     "  -w, --watch   redraw a progress bar until the copy is "
		     "complete\n"
		     "      --json    print the raw status object\n");
}

static int query(const char *sock, json_t **ret)
{
	_cleanup_free_ char *reply = NULL;
	json_error_t jerr;
	json_t *o;
	int r;

	r = ctl_request(sock, "status", &reply);
	if (r < 0)
		return r;
	o = json_loads(reply, 0, &jerr);
	if (!o)
		return -EBADMSG;
	*ret = o;
	return 0;
}

static uint64_t u(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

static void print_lifecycle(json_t *o)
{
	json_t *left = json_object_get(o, "time_left");
	int64_t expires = json_integer_value(json_object_get(o, "expires"));
	int64_t max_off = json_integer_value(json_object_get(o, "max_offline"));
	char buf[32], when[32];

	printf("copy:     %s%s\n",
	       json_is_true(json_object_get(o, "ephemeral"))
		   ? "ephemeral: destroyed at unmount"
		   : "kept for the next start",
	       json_is_true(json_object_get(o, "offline"))
		   ? " (mounted offline)"
		   : "");
	if (expires > 0) {
		time_t t = (time_t)expires;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("expires:  %s\n", when);
	}
	if (max_off > 0) {
		lifecycle_format_left(max_off, buf, sizeof(buf));
		printf("offline:  at most %s without the server\n", buf);
	}
	if (!json_is_integer(left))
		return;
	lifecycle_format_left(json_integer_value(left), buf, sizeof(buf));
	printf("left:     %s\n", buf);
	if (json_integer_value(left) < LIFECYCLE_WARN_S)
		printf("WARNING:  the local copy will be destroyed in %s\n",
		       buf);
}

/* The compression policy: what it is, the way in use, and why. */
static void print_compress(json_t *o)
{
	const char *mode = json_string_value(json_object_get(o, "compress"));
	char zg[32], rg[32];

	if (!mode) /* a mount from before the policy */
		return;
	format_bytes(u(o, "goodput_zstd_bps"), zg, sizeof(zg));
	format_bytes(u(o, "goodput_raw_bps"), rg, sizeof(rg));
	printf("compress: %s, %s; goodput zstd %s/s (%" PRIu64
	       " ranges), raw %s/s (%" PRIu64 " ranges)\n",
	       mode,
	       json_is_true(json_object_get(o, "compress_asking"))
		   ? "asking for zstd"
		   : "not asking",
	       zg, u(o, "samples_zstd"), rg, u(o, "samples_raw"));
}

static void print_status(json_t *o)
{
	char size[32], fetched[32], rate[32];
	uint64_t data = u(o, "blocks_data"), cached = u(o, "blocks_cached");
	double up = json_real_value(json_object_get(o, "uptime_s"));
	json_t *after = json_object_get(o, "complete_after_s");

	format_bytes(u(o, "size"), size, sizeof(size));
	format_bytes(u(o, "bytes_fetched"), fetched, sizeof(fetched));
	printf("image:    %s (version %" PRIu64 ") from %s\n",
	       json_string_value(json_object_get(o, "image")), u(o, "version"),
	       json_string_value(json_object_get(o, "server")));
	printf("size:     %s, %" PRIu64 " blocks of %" PRIu64 " bytes (%" PRIu64
	       " zero)\n",
	       size, u(o, "blocks_total"), u(o, "block_size"),
	       u(o, "blocks_zero"));
	printf("cached:   %" PRIu64 " of %" PRIu64 " data blocks (%.1f%%)%s",
	       cached, data, data ? 100.0 * (double)cached / (double)data : 100,
	       json_is_true(json_object_get(o, "complete")) ? ", complete"
							    : "");
	if (json_is_real(after))
		printf(" %.1f s after the mount started",
		       json_real_value(after));
	printf("\n");
	format_bytes((uint64_t)json_real_value(json_object_get(o, "rate_bps")),
		     rate, sizeof(rate));
	printf("fetched:  %s in %" PRIu64 " requests, %.1f s since mount; "
	       "now %s/s\n",
	       fetched, u(o, "requests"), up, rate);
	if (u(o, "blocks_reused"))
		printf("reused:   %" PRIu64 " blocks cached under the previous "
		       "version\n",
		       u(o, "blocks_reused"));
	printf("changes:  %" PRIu64 " blocks written and not yet synced\n",
	       u(o, "blocks_dirty"));
	if (u(o, "max_cache")) {
		char bound[32];

		format_bytes(u(o, "max_cache"), bound, sizeof(bound));
		printf("bound:    --max-cache %s, %" PRIu64
		       " blocks evicted so far\n",
		       bound, u(o, "evicted_blocks"));
	}
	print_compress(o);
	printf("hydrate:  %s\n", json_is_true(json_object_get(o, "hydrating"))
				     ? "running"
				     : "idle");
	/* A mount from before boot profiles has none of these: 0. */
	if (u(o, "profile_blocks"))
		printf("profile:  %" PRIu64 " of %" PRIu64
		       " boot-profile blocks prefetched%s\n",
		       u(o, "profile_fetched"), u(o, "profile_blocks"),
		       json_is_true(json_object_get(o, "profile_done"))
			   ? ""
			   : " so far");
	printf("recorded: %" PRIu64 " blocks in first-read order%s\n",
	       u(o, "profile_recorded"),
	       json_is_true(json_object_get(o, "profile_uploaded"))
		   ? " (uploaded)"
		   : "");
	print_lifecycle(o);
}

static int watch(const char *sock)
{
	uint64_t last_bytes = 0, last_ns = now_ns();

	for (;;) {
		json_t *o;
		char line[200];
		uint64_t bs, data, cached, bytes, now = now_ns();
		double rate;
		bool done;
		int r = query(sock, &o);

		if (r < 0)
			return r;
		bs = u(o, "block_size");
		data = u(o, "blocks_data");
		cached = u(o, "blocks_cached");
		bytes = u(o, "bytes_fetched");
		rate = now > last_ns ? (double)(bytes - last_bytes) * 1e9 /
					   (double)(now - last_ns)
				     : 0;
		last_bytes = bytes;
		last_ns = now;
		done = json_is_true(json_object_get(o, "complete"));
		progress_format(line, sizeof(line),
				json_string_value(json_object_get(o, "image")),
				cached * bs, data * bs, rate);
		printf("\r%s\033[K", line);
		fflush(stdout);
		json_decref(o);
		if (done) {
			printf("\ncomplete\n");
			return 0;
		}
		usleep(500000);
	}
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"watch", no_argument, NULL, 'w'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool want_watch = false, want_json = false;
	char sock[256];
	json_t *o;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "wh", longopts, NULL)) != -1) {
		switch (c) {
		case 'w':
			want_watch = true;
			break;
		case 'j':
			want_json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	r = ctl_find(argv[optind], sock, sizeof(sock));
	if (r < 0) {
		log_error("%s is not a vmferry mount", argv[optind]);
		return 1;
	}
	if (want_watch) {
		r = watch(sock);
		if (r < 0) {
			log_error_errno(r, "status of %s: %m", argv[optind]);
			return 1;
		}
		return 0;
	}
	r = query(sock, &o);
	if (r < 0) {
		log_error_errno(r, "status of %s: %m", argv[optind]);
		return 1;
	}
	if (want_json) {
		char *s = json_dumps(o, JSON_INDENT(2));

		if (s)
			puts(s);
		free(s);
	} else {
		print_status(o);
	}
	json_decref(o);
	return 0;
}
