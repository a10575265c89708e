/* SPDX-License-Identifier: MIT */
/* Subcommand helpers.  Stateless; single-threaded callers. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

#include "cli.h"
#include "versions.h"
#include "store.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, CLI_PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" CLI_PROG " %s%s--help'.\n", cmd,
		*cmd ? " " : "");
	return CLI_EXIT_USAGE;
}

int cli_parse_help(int argc, char **argv, const char *usage, const char *cmd)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 1;
		}
		return cli_usage_error(cmd, "unknown option");
	}
	return 0;
}

char *cli_dir_file(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

int cli_check_server_dir(const char *dir)
{
	_cleanup_free_ char *tokens = cli_dir_file(dir, CLI_TOKENS);

	if (!tokens)
		return log_oom();
	if (access(tokens, F_OK) < 0)
		return log_error_errno(-ENOENT,
				       "%s is not a vmferry server directory "
				       "(no %s; run '" CLI_PROG " init %s')",
				       dir, CLI_TOKENS, dir);
	return 0;
}

int cli_open_store(const char *dir, struct store **ret_s,
		   struct versions **ret_v)
{
	int r = cli_check_server_dir(dir);

	if (r < 0)
		return r;
	r = store_open(dir, ret_s);
	if (r == 0) {
		r = versions_open(dir, *ret_s, ret_v);
		if (r < 0)
			store_free(*ret_s);
	}
	if (r < 0)
		return log_error_errno(r, "opening %s: %m", dir);
	return 0;
}
