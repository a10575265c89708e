/* SPDX-License-Identifier: MIT */
/* vmferry-server gc DIR: drop old versions and sweep unused blocks.
 *
 * Options and output only; the work is gc.c's.  Single-threaded.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#include "audit.h"
#include "cli.h"
#include "cmd_gc.h"
#include "gc.h"
#include "retention.h"
#include "store.h"
#include "versions.h"

static const char usage_gc[] =
    "usage: " CLI_PROG " gc DIR [OPTIONS]\n"
    "\n"
    "Drop each image's versions beyond its retention, then remove the\n"
    "blocks no kept version names.  Safe while DIR is served: commits\n"
    "wait until it is done, reads go on.\n"
    "\n"
    "  --keep-versions N  versions kept per image unless its policy.json\n"
    "                     sets keep_versions (default 10); the current\n"
    "                     version and a live lease's are always kept\n"
    "  --grace SECS       never remove a block or DIR/tmp file modified\n"
    "                     in the last SECS seconds (default 3600): blocks\n"
    "                     uploaded for a commit still to come\n"
    "  --dry-run          count what would go; change nothing\n";

static int parse_gc(int argc, char **argv, struct gc_options *o)
{
	static const struct option opts[] = {
	    {"keep-versions", required_argument, NULL, 'k'},
	    {"grace", required_argument, NULL, 'g'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t n;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (retention_parse_keep("gc", optarg,
						 &o->keep_versions))
				return 2;
			break;
		case 'g':
			if (parse_u64(optarg, &n) < 0 || n > INT32_MAX)
				return cli_usage_error(
				    "gc", "--grace: want seconds, 0 or more");
			o->grace = (int64_t)n;
			break;
		case 'n':
			o->dry_run = true;
			break;
		case 'h':
			fputs(usage_gc, stdout);
			return 1;
		default:
			return cli_usage_error("gc", "unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("gc", "gc takes one argument, DIR");
	return 0;
}

int cmd_gc(int argc, char **argv)
{
	struct gc_options o = {.keep_versions = RETENTION_KEEP_DEFAULT,
			       .grace = GC_GRACE_DEFAULT};
	struct store *s = NULL;
	struct versions *v = NULL;
	struct gc_result res = {0};
	const char *dir, *verb;
	char bytes[32];
	int r;

	r = parse_gc(argc, argv, &o);
	if (r != 0)
		return r == 1 ? 0 : r;
	dir = argv[optind];
	r = cli_open_store(dir, &s, &v);
	if (r < 0)
		return r;
	r = gc_run(s, v, &o, &res); /* logs its errors */
	versions_free(v);
	store_free(s);
	if (r < 0)
		return r;
	if (!o.dry_run)
		audit_cli(dir, &(struct audit_entry){
				   .action = "gc",
				   .extra = json_pack(
				       "{s:I, s:I}", "versions_dropped",
				       (json_int_t)res.versions_dropped,
				       "blocks_removed",
				       (json_int_t)res.blocks_removed),
			       });
	verb = o.dry_run ? "would remove" : "removed";
	format_bytes(res.bytes_removed, bytes, sizeof(bytes));
	printf(
	    "%s%" PRIu64 " images: %" PRIu64 " versions kept, %" PRIu64 " %s\n",
	    o.dry_run ? "dry run: " : "", res.images, res.versions_kept,
	    res.versions_dropped, o.dry_run ? "would be dropped" : "dropped");
	printf("blocks: %" PRIu64 " in use, %" PRIu64
	       " unused but within the grace period, %" PRIu64 " %s (%" PRIu64
	       " bytes, %s)\n",
	       res.blocks_kept, res.blocks_young, res.blocks_removed, verb,
	       res.bytes_removed, bytes);
	printf("tmp: %" PRIu64 " files %s (%" PRIu64 " bytes)\n",
	       res.tmp_removed, verb, res.tmp_bytes);
	return 0;
}
