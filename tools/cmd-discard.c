/* SPDX-License-Identifier: MIT */
/* `vmferry discard URL`: destroy the local copy of an image, unsynced
 * changes included: the wrapped data key first (after that nothing in the
 * copy can be read), then the files. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"

#include "../fusefs/keys.h"
#include "../fusefs/local.h"
#include "../fusefs/remote.h"
#include "commands.h"

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmferry discard [--cache DIR] https://HOST:PORT/NAME\n"
	    "\n"
	    "Destroy the local copy of NAME, with any changes not yet synced:\n"
	    "its key is overwritten first, then its files are removed.  The copy\n"
	    "must not be mounted.  A lease it held expires on the server (or\n"
	    "the administrator breaks it: vmferry-server lease break).\n");
}

int cmd_discard(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"cache", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *cache = NULL, *why;
	struct remote_url url;
	_cleanup_close_ int lock = -1;
	char dir[4096];
	struct stat st;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cache = optarg;
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
	if (remote_parse_url(argv[optind], &url, &why) < 0) {
		log_error("bad URL \"%s\": %s", argv[optind], why);
		return 2;
	}
	r = local_copy_dir(cache, &url, dir, sizeof(dir));
	if (r < 0) {
		log_error_errno(r, "cache directory: %m (use --cache DIR)");
		return 1;
	}
	if (stat(dir, &st) < 0) {
		log_error("no local copy of %s in %s", url.name, dir);
		return 1;
	}
	r = local_lock(dir, &lock);
	if (r == -EBUSY) {
		log_error("%s: the copy is mounted: unmount it first", dir);
		return 1;
	}
	if (r < 0) {
		log_error_errno(r, "%s: cannot lock it: %m", dir);
		return 1;
	}
	r = keys_destroy(dir);
	if (r < 0) {
		log_error_errno(r, "destroying the key in %s: %m", dir);
		return 1;
	}
	r = rm_rf(dir);
	if (r < 0) {
		log_error_errno(r, "removing %s: %m (its key is already gone)",
				dir);
		return 1;
	}
	printf("discarded the local copy of %s (%s)\n", url.name, dir);
	return 0;
}
