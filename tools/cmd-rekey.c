/* SPDX-License-Identifier: MIT */
/* `vmferry rekey URL|DIR`: re-wrap a local copy's data key under a new
 * user key (a key file or a passphrase).  Only data.key is replaced,
 * atomically; the blocks, sealed under the data key, are not touched, so
 * this takes the time of two key derivations whatever the copy's size.
 * Refused while the copy is mounted (its in-use lock). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "log.h"

#include "../fusefs/keys.h"
#include "../fusefs/local.h"
#include "../fusefs/plain.h"
#include "../fusefs/remote.h"
#include "commands.h"
#include "toolopts.h"

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmferry rekey [OPTIONS] https://HOST:PORT/NAME | COPY-DIR\n"
	    "       vmferry rekey [OPTIONS] URL/NAME/vmferry.json (a plain export)\n"
	    "\n"
	    "Protect a local copy with a new key file or passphrase.  Only the\n"
	    "wrapped data key (data.key) is rewritten, atomically: the cached\n"
	    "blocks stay as they are.  The copy must not be mounted.  No network.\n"
	    "\n"
	    "      --cache DIR             where the copy is (default as for mount)\n"
	    "  the current key (default: the default key file):\n"
	    "      --key-file FILE         your key file\n"
	    "      --passphrase            ask for the passphrase on the terminal\n"
	    "      --passphrase-file FILE  the passphrase: FILE's first line (0600)\n"
	    "  the new key (default: a new passphrase, asked twice on the terminal):\n"
	    "      --new-key-file FILE     a key file (created, 0600, if absent)\n"
	    "      --new-passphrase        ask for the new passphrase on the terminal\n"
	    "      --new-passphrase-file FILE  the new passphrase: FILE's first line\n"
	    "  -h, --help                  this help\n");
}

/* The copy's directory: arg is a URL, or the directory itself. */
static int copy_dir(const char *cache, const char *arg, char *buf, size_t len)
{
	struct remote_url url;
	const char *why;
	struct stat st;
	bool plain;
	int r, n;

	if (strstr(arg, "://")) {
		if (plain_or_remote_url(arg, &url, &plain, &why) < 0) {
			log_error("bad URL \"%s\": %s", arg, why);
			return -EINVAL;
		}
		r = local_copy_dir(cache, &url, buf, len);
		if (r < 0)
			return log_error_errno(r, "cache directory: %m (use "
						  "--cache DIR)");
	} else {
		n = snprintf(buf, len, "%s", arg);
		if (n < 0 || (size_t)n >= len)
			return log_error_errno(-ENAMETOOLONG, "%s: %m", arg);
	}
	if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_error("no local copy in %s", buf);
		return -ENOENT;
	}
	return 0;
}

static int rekey(const char *dir, const struct local_key_opts *old_o,
		 const struct local_key_opts *new_o)
{
	_cleanup_close_ int lock = -1;
	struct keys_user old, new_user;
	uint8_t id[CRYPTO_CACHE_ID_LEN], dkey[CRYPTO_KEY_LEN];
	enum keys_kind kind;
	int r;

	/* Before the lock (which makes a file) or any question. */
	r = keys_data_kind(dir, &kind);
	if (r == -ENOENT) {
		log_error("no local copy in %s (it holds no data.key)", dir);
		return r;
	}
	r = local_lock(dir, &lock);
	if (r == -EBUSY) {
		log_error("the local copy in %s is mounted: unmount it first",
			  dir);
		return r;
	}
	if (r < 0)
		return log_error_errno(r, "%s: cannot lock it: %m", dir);
	memset(&old, 0, sizeof(old));
	memset(&new_user, 0, sizeof(new_user));
	/* The current key first, checked (and its data key unwrapped and
	 * dropped) before a new one is asked for. */
	r = local_user_secret(old_o, dir, false, &old);
	if (r == 0)
		r = local_open_keys(dir, &old, id, dkey);
	crypto_cleanse(dkey, sizeof(dkey));
	if (r == 0)
		r = local_new_secret(new_o, dir, &new_user);
	if (r == 0) {
		r = keys_rekey(dir, &old, &new_user);
		if (r < 0)
			local_keys_error(r, dir, &old);
	}
	if (r == 0)
		printf("the local copy in %s is now protected by the new %s "
		       "(its blocks are unchanged)\n",
		       dir, keys_kind_name(new_user.kind));
	keys_user_fini(&old);
	keys_user_fini(&new_user);
	return r;
}

static int rekey_opt(int c, const char *arg, void *opaque)
{
	struct local_key_opts *new_o = opaque;

	switch (c) {
	case 256:
		new_o->key_file = arg;
		break;
	case 257:
		new_o->passphrase = true;
		break;
	default:
		new_o->passphrase_file = arg;
		break;
	}
	return 0;
}

int cmd_rekey(int argc, char **argv)
{
	static const struct option own[] = {
	    {"new-key-file", required_argument, NULL, 256},
	    {"new-passphrase", no_argument, NULL, 257},
	    {"new-passphrase-file", required_argument, NULL, 258},
	    {NULL, 0, NULL, 0},
	};
	struct tool_opts o = {.want = TOOL_OPT_CACHE | TOOL_OPT_KEYS};
	struct local_key_opts new_o = {0}, old_o;
	const char *cache;
	char dir[4096];
	int r;

	r = tool_parse(argc, argv, &o, own, rekey_opt, &new_o, usage);
	if (r >= 0)
		return r;
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	old_o = o.keys;
	cache = o.cache;
	if (local_key_opts_check(&new_o, "new-") < 0)
		return 2;
	r = copy_dir(cache, argv[optind], dir, sizeof(dir));
	if (r == -EINVAL)
		return 2;
	if (r == 0)
		r = rekey(dir, &old_o, &new_o);
	return r < 0 ? 1 : 0;
}
