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

#include "../fusefs/cache.h"
#include "../fusefs/fetch.h"
#include "../fusefs/keys.h"
#include "../fusefs/lease.h"
#include "../fusefs/local.h"
#include "../fusefs/plain.h"
#include "../fusefs/remote.h"
#include "commands.h"
#include "toolopts.h"

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmferry discard [--cache DIR] https://HOST:PORT/NAME\n"
	    "       vmferry discard [--cache DIR] URL/NAME/vmferry.json\n"
	    "\n"
	    "Destroy the local copy of NAME, with any changes not yet synced:\n"
	    "its key is overwritten first, then its files are removed.  The copy\n"
	    "must not be mounted.  A lease it held expires on the server (or\n"
	    "the administrator breaks it: vmferry-server lease break).\n"
	    "With a token and the copy's key, the lease is released at once:\n"
	    "\n"
	    "      --key-file FILE, --passphrase, --passphrase-file FILE\n"
	    "                         the copy's key (as for mount)\n"
	    "      --token-file FILE  bearer token (default: $VMFERRY_TOKEN)\n"
	    "      --cacert FILE      trust this CA or self-signed certificate\n"
	    "      --pin-sha256 B64   also require this server public key\n"
	    "      --insecure         do not verify the server (loudly)\n");
}

/* Best effort: release the lease the copy holds, if any.  Says what it
 * did; never stops the discard. */
static void release_copy_lease(const char *dir, const struct remote_url *url,
			       const struct local_key_opts *keys,
			       const char *token_file, struct fetch_config *cfg)
{
	uint8_t id[CRYPTO_CACHE_ID_LEN], dkey[CRYPTO_KEY_LEN];
	struct keys_user user;
	_cleanup_free_ void *lease = NULL;
	_cleanup_free_ char *token = NULL;
	struct cache *c = NULL;
	struct fetch *f = NULL;
	char why[256];
	size_t len;
	int r;

	if (remote_read_token(token_file, &token) < 0)
		return; /* no token: the lease expires by itself */
	memset(&user, 0, sizeof(user));
	r = local_user_secret(keys, dir, false, &user);
	if (r == 0)
		r = local_open_keys(dir, &user, id, dkey);
	keys_user_fini(&user);
	if (r == 0)
		r = cache_open(dir, dkey, id, 0, &c);
	crypto_cleanse(dkey, sizeof(dkey));
	if (r == 0)
		r = cache_meta_get(c, "lease_id", &lease, &len);
	cache_free(c);
	if (r < 0)
		goto out;
	cfg->base_url = url->base;
	cfg->token = token;
	cfg->connect_timeout_s = 10;
	cfg->stall_timeout_s = 30;
	r = fetch_new(cfg, &f);
	if (r == 0)
		r = lease_release(f, url->name, lease, why);
	fetch_free(f);
	if (r < 0)
		log_warn("could not release the copy's lease (%s): it expires "
			 "by itself, or the administrator breaks it",
			 r == -EBUSY ? "someone else holds it" : why);
out:
	crypto_cleanse(token, strlen(token));
}

int cmd_discard(int argc, char **argv)
{
	struct tool_opts o = {.want = TOOL_OPT_CACHE | TOOL_OPT_KEYS |
				      TOOL_OPT_SERVER};
	struct fetch_config cfg = {0};
	const char *why;
	struct remote_url url;
	bool plain;
	_cleanup_close_ int lock = -1;
	char dir[4096];
	struct stat st;
	int r;

	r = tool_parse(argc, argv, &o, NULL, NULL, NULL, usage);
	if (r >= 0)
		return r;
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	tool_fetch_config(&o, &cfg);
	if (plain_or_remote_url(argv[optind], &url, &plain, &why) < 0) {
		log_error("bad URL \"%s\": %s", argv[optind], why);
		return 2;
	}
	r = local_copy_dir(o.cache, &url, dir, sizeof(dir));
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
	if (!plain) /* a plain export's copy holds no lease */
		release_copy_lease(dir, &url, &o.keys, o.token_file, &cfg);
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
