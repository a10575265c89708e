/* SPDX-License-Identifier: MIT */
/* Lease administration and version history on a server directory.
 *
 * Works on the files directly, next to a running server: a break takes
 * the image lock (leases.h) and the server reads lease.json afresh at
 * every lease or commit request, so it takes effect at once.
 * Single-threaded.
 */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h> /* optind */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

#include "audit.h"
#include "cli.h"
#include "cmd_lease.h"
#include "history.h"
#include "leases.h"
#include "pins.h"
#include "store.h"
#include "versions.h"

static const char usage_lease[] =
    "usage: " CLI_PROG " lease list DIR\n"
    "       " CLI_PROG " lease break DIR NAME\n"
    "\n"
    "list shows each image's lease: holder, where the VM runs (local or\n"
    "remote), since and until when (UTC); an expired lease binds nobody.\n"
    "Then the live pins: the versions read-only clients read, which\n"
    "retention keeps.\n"
    "break removes NAME's lease: its holder's next commit is refused, and\n"
    "anyone may take a new lease.  A running server sees it at once.\n";

static const char usage_versions[] =
    "usage: " CLI_PROG " versions DIR NAME\n"
    "\n"
    "List the versions of image NAME: number, commit time (UTC), author\n"
    "(the committing token's label, or 'import'), blocks changed from the\n"
    "previous version and the bytes of those blocks.  '-' marks what is\n"
    "not known (versions committed by older servers).\n";

/* The live pins of the images names, if any. */
static void pin_list_all(struct versions *v, char **names, size_t n,
			 int64_t now)
{
	char since[32], until[32];
	bool header = false;

	for (size_t i = 0; i < n; i++) {
		struct pin *p = NULL;
		size_t np = 0;
		int r = pin_list(v, names[i], now, &p, &np);

		if (r < 0)
			log_warn_errno(r, "image %s: pins: %m", names[i]);
		for (size_t j = 0; j < np; j++) {
			if (!header)
				printf("\n%-20s  %-24s  %-7s  %-20s  %s\n",
				       "IMAGE", "PINNED BY", "VERSION", "SINCE",
				       "EXPIRES");
			header = true;
			lease_format_time(p[j].since, since, sizeof(since));
			lease_format_time(p[j].expires, until, sizeof(until));
			printf("%-20s  %-24s  %-7llu  %-20s  %s\n", names[i],
			       p[j].holder, (unsigned long long)p[j].version,
			       since, until);
		}
		free(p);
	}
}

static int lease_list(struct versions *v)
{
	char **names = NULL, since[32], until[32];
	int64_t now = now_wall();
	size_t n = 0;
	struct lease l;
	int r;

	r = versions_names(v, &names, &n);
	if (r < 0)
		return log_error_errno(r, "listing images: %m");
	printf("%-20s  %-24s  %-6s  %-20s  %s\n", "IMAGE", "HOLDER", "WHERE",
	       "SINCE", "EXPIRES");
	for (size_t i = 0; i < n; i++) {
		r = lease_read(v, names[i], &l);
		if (r == -ENOENT)
			continue;
		if (r < 0) {
			log_warn_errno(r, "image %s: lease: %m", names[i]);
			continue;
		}
		lease_format_time(l.since, since, sizeof(since));
		lease_format_time(l.expires, until, sizeof(until));
		printf("%-20s  %-24s  %-6s  %-20s  %s%s\n", names[i], l.holder,
		       l.where, since, until,
		       lease_live(&l, now) ? "" : " (expired)");
	}
	pin_list_all(v, names, n, now);
	versions_names_free(names, n);
	return 0;
}

static int lease_break_cmd(const char *dir, struct versions *v,
			   const char *name)
{
	char since[32];
	struct lease l;
	int r;

	r = lease_break(v, name, &l);
	if (r == -ENOENT)
		return log_error_errno(r,
				       "image %s has no lease (or no such "
				       "image)",
				       name);
	if (r < 0)
		return log_error_errno(r, "breaking the lease of %s: %m", name);
	audit_cli(dir, &(struct audit_entry){
			   .action = "lease.break",
			   .image = name,
			   .extra = json_pack("{s:s, s:s}", "holder", l.holder,
					      "where", l.where),
		       });
	lease_format_time(l.since, since, sizeof(since));
	printf("broke the lease of %s held by %s (%s) since %s\n", name,
	       l.holder, l.where, since);
	return 0;
}

int cmd_lease(int argc, char **argv)
{
	struct store *s = NULL;
	struct versions *v = NULL;
	const char *sub;
	int r;

	if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
		fputs(usage_lease, stdout);
		return 0;
	}
	if (argc < 2)
		return cli_usage_error("lease", "want list or break");
	sub = argv[1];
	r = cli_parse_help(argc - 1, argv + 1, usage_lease, "lease");
	if (r != 0)
		return r == 1 ? 0 : r;
	argc -= optind + 1;
	argv += optind + 1;
	if (strcmp(sub, "list") == 0 && argc != 1)
		return cli_usage_error("lease", "lease list takes DIR");
	if (strcmp(sub, "break") == 0 && argc != 2)
		return cli_usage_error("lease", "lease break takes DIR NAME");
	if (strcmp(sub, "list") != 0 && strcmp(sub, "break") != 0)
		return cli_usage_error("lease", "unknown subcommand '%s'", sub);
	if (argc == 2 && !image_name_valid(argv[1]))
		return cli_usage_error("lease", "invalid image name '%s'",
				       argv[1]);
	r = cli_open_store(argv[0], &s, &v);
	if (r < 0)
		return r;
	r = argc == 1 ? lease_list(v) : lease_break_cmd(argv[0], v, argv[1]);
	versions_free(v);
	store_free(s);
	return r;
}

/* "-" for a field the record lacks. */
static void field(json_t *e, const char *key, char *buf, size_t len)
{
	json_t *j = json_object_get(e, key);

	if (json_is_integer(j))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(j));
	else if (json_is_string(j))
		snprintf(buf, len, "%s", json_string_value(j));
	else
		snprintf(buf, len, "-");
}

static void print_history(json_t *list)
{
	char num[24], when[32], author[160], changed[24], bytes[24];
	size_t i;
	json_t *e, *t;

	printf("%-8s  %-20s  %-20s  %14s  %14s\n", "VERSION", "TIME", "AUTHOR",
	       "BLOCKS_CHANGED", "BYTES_ADDED");
	json_array_foreach(list, i, e)
	{
		field(e, "version", num, sizeof(num));
		t = json_object_get(e, "time");
		if (json_is_integer(t))
			lease_format_time(json_integer_value(t), when,
					  sizeof(when));
		else
			snprintf(when, sizeof(when), "-");
		field(e, "author", author, sizeof(author));
		field(e, "blocks_changed", changed, sizeof(changed));
		field(e, "bytes_added", bytes, sizeof(bytes));
		printf("%-8s  %-20s  %-20s  %14s  %14s\n", num, when, author,
		       changed, bytes);
	}
}

int cmd_versions(int argc, char **argv)
{
	struct store *s = NULL;
	struct versions *v = NULL;
	json_t *list = NULL;
	const char *name;
	int r;

	r = cli_parse_help(argc, argv, usage_versions, "versions");
	if (r != 0)
		return r == 1 ? 0 : r;
	if (argc - optind != 2)
		return cli_usage_error("versions", "versions takes DIR NAME");
	name = argv[optind + 1];
	if (!image_name_valid(name))
		return cli_usage_error("versions", "invalid image name '%s'",
				       name);
	r = cli_open_store(argv[optind], &s, &v);
	if (r < 0)
		return r;
	r = history_list(v, name, &list);
	if (r == -ENOENT)
		log_error("no image %s", name);
	else if (r < 0)
		log_error_errno(r, "reading the versions of %s: %m", name);
	else
		print_history(list);
	json_decref(list);
	versions_free(v);
	store_free(s);
	return r;
}
