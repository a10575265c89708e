/* SPDX-License-Identifier: MIT */
/* `vmferry purge`: destroy every local copy whose time is up.
 *
 * For each copy under the cache base that is not mounted (a mounted copy
 * watches itself, fusefs/expiry.c; the copy's in-use lock is held while
 * it is judged and destroyed): with the user's key file, its
 * lifecycle record is verified, and an edited one is destroyed; then an
 * expired copy, or one offline for longer than its policy allows, is
 * destroyed; and an ephemeral copy left behind (a crash, a mount killed)
 * is destroyed unless it holds unsynced changes, which are never dropped
 * silently (purge itself only: the sweep before other commands looks
 * at expiry alone).  Destroying overwrites the wrapped data key first, then
 * removes the files (lifecycle_destroy()).  Without the key the plain
 * record decides; an edit that extends it is caught at the next use that
 * has the key.  purge_sweep() runs the same at the start of every
 * command, quietly, without the key.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "util.h"

#include "../fusefs/cache.h"
#include "../fusefs/keys.h"
#include "../fusefs/lifecycle.h"
#include "../fusefs/local.h"
#include "commands.h"
#include "toolopts.h"

struct sweep {
	const struct keys_user *user; /* NULL: no key, plain records only */
	bool dry_run, quiet;	      /* quiet: the sweep before a command */
	unsigned destroyed, kept;
};

/* Verify dir's record with the user key: 0 (*ret is the record),
 * -EBADMSG (edited), or another error (cannot tell: use the plain one). */
static int verify(const char *dir, const struct keys_user *user,
		  struct lifecycle *ret)
{
	uint8_t id[CRYPTO_CACHE_ID_LEN], dkey[CRYPTO_KEY_LEN];
	char path[4200];
	int r;

	/* keys_data_open() would make a new key where there is none. */
	snprintf(path, sizeof(path), "%s/data.key", dir);
	if (access(path, F_OK) < 0)
		return -ENOKEY;
	r = keys_data_open(dir, user, id, dkey);
	if (r == -EBADMSG || r == -EKEYREJECTED)
		return -ENOKEY; /* not our key: cannot tell */
	if (r < 0)
		return r;
	r = lifecycle_verify(dir, dkey, id, ret);
	crypto_cleanse(dkey, sizeof(dkey));
	return r;
}

/* Why dir should go, into why; false if it stays. */
static bool judge(const char *dir, struct sweep *s, char *why, size_t len)
{
	struct lifecycle lc;
	enum lifecycle_state st;
	uint64_t dirty = 0;
	int r = -ENOKEY;

	if (s->user)
		r = verify(dir, s->user, &lc);
	if (r == -EBADMSG) {
		snprintf(why, len, "its lifecycle record was edited");
		return true;
	}
	if (r < 0 && lifecycle_read(dir, &lc) < 0)
		return false; /* no record: a copy made before lifecycles */
	st = lifecycle_check(&lc, now_wall(), NULL);
	if (st != LIFECYCLE_OK) {
		lifecycle_describe(&lc, st, why, len);
		return true;
	}
	/* Ephemeral leftovers are purge's alone: a command's sweep must not
	 * race a mount that is starting on the copy. */
	if (!lc.ephemeral || s->quiet)
		return false;
	if (cache_peek_dirty(dir, &dirty) < 0) {
		/* Cannot tell: keep it, as if it held changes. */
		log_warn("%s: an ephemeral copy left behind whose unsynced "
			 "changes cannot be counted: kept",
			 dir);
		s->kept++;
		return false;
	}
	if (dirty > 0) {
		log_warn("%s: an ephemeral copy left behind with %llu unsynced "
			 "blocks: kept; mount %s to sync them, or `vmferry "
			 "discard` it",
			 dir, (unsigned long long)dirty, lc.url);
		s->kept++;
		return false;
	}
	snprintf(why, len, "an ephemeral copy left behind");
	return true;
}

static int sweep_one(const char *dir, void *opaque)
{
	struct sweep *s = opaque;
	_cleanup_close_ int lock = -1;
	char why[256];
	int r;

	/* Held while judging and destroying: a mount starting meanwhile is
	 * refused rather than losing its copy underneath. */
	if (local_lock(dir, &lock) < 0 || !judge(dir, s, why, sizeof(why)))
		return 0;
	if (s->dry_run) {
		printf("would destroy %s: %s\n", dir, why);
		return 0;
	}
	r = lifecycle_destroy(dir);
	if (r < 0) {
		log_error_errno(r, "destroying %s (%s): %m", dir, why);
		return 0;
	}
	s->destroyed++;
	if (s->quiet)
		log_warn("destroyed the local copy in %s: %s", dir, why);
	else
		printf("destroyed %s: %s\n", dir, why);
	return 0;
}

int purge_sweep(const char *cache_base, const struct keys_user *user,
		bool dry_run, bool quiet)
{
	struct sweep s = {.user = user, .dry_run = dry_run, .quiet = quiet};
	char base[4096];
	int r;

	r = local_cache_base(cache_base, base, sizeof(base));
	if (r == 0)
		r = local_each_copy(base, sweep_one, &s);
	if (r < 0)
		return r;
	return (int)s.destroyed;
}

/* An explicit --key-file must load; the default may be absent (a user
 * of passphrases), quietly. */
static bool key_exists(const char *key_file)
{
	char path[4096];

	if (key_file)
		return true;
	return local_xdg_path("XDG_CONFIG_HOME", ".config", "/user.key", path,
			      sizeof(path)) == 0 &&
	       access(path, F_OK) == 0;
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmferry purge [--cache DIR] [--key-file FILE] "
	    "[--dry-run]\n"
	    "\n"
	    "Destroy every local copy that is not mounted and whose time is\n"
	    "up: expired, offline for longer than its image's policy allows,\n"
	    "its lifecycle record edited (checked with the key file, default\n"
	    "$XDG_CONFIG_HOME/vmferry/user.key, when it opens the copy), or\n"
	    "an ephemeral copy left behind without unsynced changes.  The\n"
	    "key is overwritten first, then the files removed.  Runs hourly\n"
	    "from the vmferry-purge.timer user unit (make install).\n");
}

struct purge_args {
	bool dry_run;
	const char *key_file;
};

static int purge_opt(int c, const char *arg, void *opaque)
{
	struct purge_args *a = opaque;

	if (c == 256)
		a->dry_run = true;
	else
		a->key_file = arg;
	return 0;
}

int cmd_purge(int argc, char **argv)
{
	/* A key file only: purge runs from a timer, with no terminal. */
	static const struct option own[] = {
	    {"dry-run", no_argument, NULL, 256},
	    {"key-file", required_argument, NULL, 257},
	    {NULL, 0, NULL, 0},
	};
	struct tool_opts o = {.want = TOOL_OPT_CACHE};
	struct keys_user user = {.kind = KEYS_KIND_FILE};
	struct purge_args a = {0};
	const char *cache, *key_file;
	bool dry_run, have_key;
	int r;

	r = tool_parse(argc, argv, &o, own, purge_opt, &a, usage);
	if (r >= 0)
		return r;
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	cache = o.cache;
	key_file = a.key_file;
	dry_run = a.dry_run;
	have_key = key_exists(key_file) &&
		   local_user_key(key_file, false, user.key) == 0;
	if (!have_key)
		log_info(
		    "no key file: checking the copies' plain records only");
	r = purge_sweep(cache, have_key ? &user : NULL, dry_run, false);
	keys_user_fini(&user);
	if (r < 0) {
		log_error_errno(r, "purging: %m");
		return 1;
	}
	if (!dry_run)
		printf("%d local cop%s destroyed\n", r, r == 1 ? "y" : "ies");
	return 0;
}
