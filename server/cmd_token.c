/* SPDX-License-Identifier: MIT */
/* Token administration on DIR/tokens.json.
 *
 * Read-modify-write of the file happens under flock() on DIR, so two
 * `token` commands cannot lose each other's change; the file is
 * replaced atomically, so a running server reads either version.  A new
 * token is printed once on stdout and never stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "log.h"
#include "util.h"

#include "audit.h"
#include "auth.h"
#include "cli.h"
#include "cmd_token.h"

#define GRANTS_MAX 64

static const char usage_token[] =
    "usage: " CLI_PROG " token add DIR --name LABEL [--read IMAGE]...\n"
    "                               [--write IMAGE]... [--run IMAGE]...\n"
    "                               [--admin]\n"
    "       " CLI_PROG " token list DIR\n"
    "       " CLI_PROG " token revoke DIR ID\n"
    "\n"
    "add prints a new token once on stdout; the server keeps only its\n"
    "SHA-256.  IMAGE may be '*' for every image; write implies read;\n"
    "run lets the server run the image's VM for the token (and read it);\n"
    "--admin may do anything, /v1/stats included.  list shows id,\n"
    "creation time (UTC), label and grants, never a token.  A change\n"
    "takes effect in a running server at its next request.\n";

static void auth_db_unrefp(struct auth_db **db)
{
	auth_db_unref(*db);
}

/* flock() DIR for a read-modify-write of tokens.json. */
static int lock_dir(const char *dir, int *ret_fd)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return log_error_errno(-errno, "%s: %m", dir);
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return log_error_errno(-errno, "locking %s: %m", dir);
	*ret_fd = steal_fd(&fd);
	return 0;
}

/* Load DIR/tokens.json (its path in *ret_path, new).  With ret_lock_fd,
 * DIR is flock()ed first, until that fd is closed. */
static int load(const char *dir, int *ret_lock_fd, char **ret_path,
		struct auth_db **ret_db)
{
	_cleanup_free_ char *path = cli_dir_file(dir, CLI_TOKENS);
	int r;

	if (!path)
		return log_oom();
	r = cli_check_server_dir(dir);
	if (r == 0 && ret_lock_fd)
		r = lock_dir(dir, ret_lock_fd);
	if (r < 0)
		return r;
	r = auth_db_load(path, ret_db);
	if (r < 0)
		return log_error_errno(r, "reading %s: %m", path);
	*ret_path = steal_ptr(&path);
	return 0;
}

struct add_opts {
	const char *label;
	const char *read[GRANTS_MAX];
	const char *write[GRANTS_MAX];
	const char *run[GRANTS_MAX];
	struct auth_grants g;
};

static int parse_add(int argc, char **argv, struct add_opts *o)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"read", required_argument, NULL, 'r'},
	    {"write", required_argument, NULL, 'w'},
	    {"run", required_argument, NULL, 'R'},
	    {"admin", no_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	o->g.read = o->read;
	o->g.write = o->write;
	o->g.run = o->run;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_token, stdout);
			return 1;
		}
		if (c == 'n') {
			o->label = optarg;
			continue;
		}
		if (c == 'a') {
			o->g.admin = true;
			continue;
		}
		if (c != 'r' && c != 'w' && c != 'R')
			return cli_usage_error("token", "unknown option");
		if (!auth_grant_valid(optarg))
			return cli_usage_error("token",
					       "'%s' is neither an image name "
					       "nor '*'",
					       optarg);
		if (o->g.nread == GRANTS_MAX || o->g.nwrite == GRANTS_MAX ||
		    o->g.nrun == GRANTS_MAX)
			return cli_usage_error("token", "too many grants");
		if (c == 'r')
			o->read[o->g.nread++] = optarg;
		else if (c == 'w')
			o->write[o->g.nwrite++] = optarg;
		else
			o->run[o->g.nrun++] = optarg;
	}
	if (argc - optind != 1)
		return cli_usage_error("token", "token add takes one argument, "
						"DIR");
	if (!o->label)
		return cli_usage_error("token", "token add needs --name LABEL");
	if (!o->g.admin && !o->g.nread && !o->g.nwrite && !o->g.nrun)
		return cli_usage_error("token", "give --read, --write, --run "
						"or --admin");
	return 0;
}

static void free_secretp(char **p)
{
	if (*p) {
		OPENSSL_cleanse(*p, strlen(*p));
		free(*p);
	}
}

static int token_add(int argc, char **argv)
{
	struct add_opts o = {0};
	_cleanup_(auth_db_unrefp) struct auth_db *db = NULL;
	_cleanup_(free_secretp) char *tok = NULL;
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int lock_fd = -1;
	uint8_t hash[VMF_HASH_LEN];
	const char *dir, *id;
	int r;

	r = parse_add(argc, argv, &o);
	if (r != 0)
		return r == 1 ? 0 : r;
	dir = argv[optind];
	r = load(dir, &lock_fd, &path, &db);
	if (r < 0)
		return r;
	r = auth_token_new(&tok);
	if (r < 0)
		return log_error_errno(r, "making a token: %m");
	auth_token_hash(tok, hash);
	r = auth_db_add(db, o.label, &o.g, hash, now_wall(), &id);
	if (r == -EINVAL)
		return cli_usage_error("token",
				       "invalid label (1-%d printable "
				       "characters)",
				       AUTH_LABEL_MAX);
	if (r == 0)
		r = auth_db_save(db, path);
	if (r < 0)
		return log_error_errno(r, "adding the token to %s: %m", path);
	audit_cli(dir, &(struct audit_entry){
			   .action = "token.add",
			   .token = id,
			   .extra = json_pack("{s:s}", "label", o.label),
		       });
	printf("%s\n", tok);
	fflush(stdout);
	fprintf(stderr, "added token %s (%s)\n", id, o.label);
	return 0;
}

static int token_list(const char *dir)
{
	_cleanup_(auth_db_unrefp) struct auth_db *db = NULL;
	_cleanup_free_ char *path = NULL;
	char grants[1024], when[32];
	int r;

	r = load(dir, NULL, &path, &db);
	if (r < 0)
		return r;
	printf("%-12s  %-20s  %-16s  %s\n", "ID", "CREATED", "LABEL", "GRANTS");
	for (size_t i = 0; i < db->n; i++) {
		const struct auth_token *t = &db->tokens[i];
		time_t created = (time_t)t->created;
		struct tm tm;

		if (!gmtime_r(&created, &tm) ||
		    !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
			snprintf(when, sizeof(when), "?");
		auth_grants_format(t, grants, sizeof(grants));
		printf("%-12s  %-20s  %-16s  %s\n", t->id, when, t->label,
		       grants);
	}
	return 0;
}

static int token_revoke(const char *dir, const char *id)
{
	_cleanup_(auth_db_unrefp) struct auth_db *db = NULL;
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int lock_fd = -1;
	int r;

	r = load(dir, &lock_fd, &path, &db);
	if (r < 0)
		return r;
	r = auth_db_revoke(db, id);
	if (r == -ENOENT)
		return log_error_errno(r, "no token with id '%s' in %s", id,
				       path);
	r = auth_db_save(db, path);
	if (r < 0)
		return log_error_errno(r, "writing %s: %m", path);
	audit_cli(dir,
		  &(struct audit_entry){.action = "token.revoke", .token = id});
	printf("revoked token %s\n", id);
	return 0;
}

int cmd_token(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (!sub)
		return cli_usage_error("token", "token needs add, list or "
						"revoke");
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fputs(usage_token, stdout);
		return 0;
	}
	if (strcmp(sub, "add") == 0)
		return token_add(argc - 1, argv + 1);
	/* list and revoke take only positional arguments (and --help). */
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			fputs(usage_token, stdout);
			return 0;
		}
		if (argv[i][0] == '-')
			return cli_usage_error("token", "unknown option '%s'",
					       argv[i]);
	}
	if (strcmp(sub, "list") == 0 && argc == 3)
		return token_list(argv[2]);
	if (strcmp(sub, "revoke") == 0 && argc == 4)
		return token_revoke(argv[2], argv[3]);
	if (strcmp(sub, "list") == 0 || strcmp(sub, "revoke") == 0)
		return cli_usage_error("token", "wrong number of arguments");
	return cli_usage_error("token", "unknown token command '%s'", sub);
}
