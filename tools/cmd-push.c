/* SPDX-License-Identifier: MIT */
/* `vmferry push URL --as NEW`: publish a local copy's state (the version
 * it is on plus its unsynced changes) as a new image NEW.  The way out of
 * a conflict (a broken lease, a newer version on the server) that keeps
 * the work; `vmferry discard` is the other. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "hash.h"
#include "log.h"
#include "manifest.h"
#include "util.h"

#include "../fusefs/cache.h"
#include "../fusefs/fetch.h"
#include "../fusefs/keys.h"
#include "../fusefs/local.h"
#include "../fusefs/remote.h"
#include "../fusefs/upload.h"
#include "commands.h"
#include "toolopts.h"

struct push {
	struct remote_url url;
	const char *as;
	struct fetch *fetch;
	struct cache *cache;
	struct manifest man; /* the version the copy is on, then NEW's */
	struct upload_stats st;
	uint64_t changed;
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmferry push [OPTIONS] --as NEW https://HOST:PORT/NAME\n"
	    "\n"
	    "Publish the local copy of NAME (the version it is on, with its\n"
	    "unsynced changes) as a new image NEW on the same server.\n"
	    "\n"
	    "      --as NEW           the new image's name (required)\n"
	    "      --cache DIR        where the copy is (default as for mount)\n"
	    "      --key-file FILE    your key (default as for mount)\n"
	    "      --passphrase       the copy's passphrase, asked on the terminal\n"
	    "      --passphrase-file FILE  the copy's passphrase: FILE's first line\n"
	    "      --token-file FILE  bearer token (default: $VMFERRY_TOKEN)\n"
	    "      --cacert FILE      trust this CA or self-signed certificate\n"
	    "      --pin-sha256 B64   also require this server public key\n"
	    "      --insecure         do not verify the server (loudly)\n");
}

/* The copy's bound version's whole manifest from the server. */
static int get_manifest(struct push *p, uint64_t version)
{
	struct fetch_req q = {0};
	uint8_t hdr[MANIFEST_HEADER_SIZE];
	struct manifest_header h;
	_cleanup_free_ uint8_t *buf = NULL;
	char path[256];
	uint64_t len;
	int r;

	remote_manifest_path(p->url.name, version, path, sizeof(path));
	q.path = path;
	q.len = sizeof(hdr);
	q.buf = hdr;
	q.buf_len = sizeof(hdr);
	r = fetch_run(p->fetch, &q);
	if (r == 0 && manifest_header_parse(hdr, sizeof(hdr), &h) < 0)
		r = -EBADMSG;
	if (r < 0)
		return log_error_errno(
		    r, "manifest of %s version %" PRIu64 ": %s", p->url.name,
		    version, r == -EBADMSG ? "does not parse" : q.errmsg);
	len = manifest_encoded_size(&h);
	buf = malloc(len);
	if (!buf)
		return log_oom();
	memset(&q, 0, sizeof(q));
	q.path = path;
	q.len = len;
	q.buf = buf;
	q.buf_len = len;
	r = fetch_run(p->fetch, &q);
	if (r == 0)
		r = manifest_parse(buf, len, &p->man);
	if (r < 0)
		return log_error_errno(r,
				       "manifest of %s version %" PRIu64 ": %m",
				       p->url.name, version);
	return 0;
}

/* Each dirty block: read it, upload it if the server lacks it, put its
 * hash in the manifest. */
static int push_one(void *opaque, uint64_t blkno, uint64_t gen,
		    const uint8_t hash[VMF_HASH_LEN])
{
	struct push *p = opaque;
	uint32_t len = manifest_block_len(&p->man.hdr, blkno);
	_cleanup_free_ uint8_t *buf = malloc(p->man.hdr.block_size);
	struct upload_block b = {.hash = hash, .buf = buf, .len = len};
	char why[256];
	int r;

	(void)gen;
	if (!buf)
		return -ENOMEM;
	if (blkno >= p->man.hdr.nblocks)
		return -EBADMSG;
	memcpy(p->man.hashes + blkno * VMF_HASH_LEN, hash, VMF_HASH_LEN);
	p->changed++;
	if (hash_is_zero(hash))
		return 0;
	r = cache_get(p->cache, blkno, hash, buf, len);
	if (r < 0)
		return log_error_errno(
		    r, "changed block %" PRIu64 " unreadable from the copy: %m",
		    blkno);
	/* One block at a time: simple, and pushes are rare. */
	r = upload_blocks(p->fetch, &b, 1, &p->st, why);
	if (r < 0)
		log_error("uploading block %" PRIu64 ": %s", blkno, why);
	return r;
}

static int run(struct push *p, const char *cache_base,
	       const struct local_key_opts *keys)
{
	uint8_t id[CRYPTO_CACHE_ID_LEN], dkey[CRYPTO_KEY_LEN];
	struct keys_user user;
	_cleanup_free_ void *ver = NULL;
	_cleanup_free_ uint8_t *enc = NULL;
	_cleanup_close_ int lock = -1;
	char dir[4096], why[256];
	uint64_t version = 0, newv;
	size_t len;
	struct stat st;
	int64_t n;
	int r;

	r = local_copy_dir(cache_base, &p->url, dir, sizeof(dir));
	if (r < 0 || stat(dir, &st) < 0) {
		log_error("no local copy of %s (use --cache DIR)", p->url.name);
		return -ENOENT;
	}
	r = local_lock(dir, &lock);
	if (r < 0)
		return log_error_errno(r, "%s: %s", dir,
				       r == -EBUSY ? "mounted: unmount it first"
						   : "cannot lock it");
	memset(&user, 0, sizeof(user));
	r = local_user_secret(keys, dir, false, &user);
	if (r == 0)
		r = local_open_keys(dir, &user, id, dkey);
	keys_user_fini(&user);
	if (r < 0)
		return r;
	r = cache_open(dir, dkey, id, 0, &p->cache);
	crypto_cleanse(dkey, sizeof(dkey));
	if (r < 0)
		return log_error_errno(r, "opening the copy: %m");
	if (cache_meta_get(p->cache, "version", &ver, &len) < 0 ||
	    parse_u64(ver, &version) < 0)
		return log_error_errno(-EBADMSG, "the copy records no version");
	r = get_manifest(p, version);
	if (r < 0)
		return r;
	n = cache_dirty_walk(p->cache, push_one, p);
	if (n < 0)
		return log_error_errno((int)n, "reading the changes: %m");
	p->man.hdr.version = 0;
	r = manifest_encode(&p->man, &enc, &len);
	if (r < 0)
		return log_error_errno(r, "encoding the manifest: %m");
	r = upload_commit(p->fetch, p->as, 0, enc, len, NULL, NULL, &newv, why);
	if (r < 0) {
		log_error("creating %s: %s", p->as, why);
		return r;
	}
	printf("pushed %s version %" PRIu64 " with %" PRIu64
	       " changed blocks as %s version %" PRIu64 " (%" PRIu64
	       " uploaded, %" PRIu64 " bytes)\n",
	       p->url.name, version, p->changed, p->as, newv, p->st.uploaded,
	       p->st.bytes);
	return 0;
}

static int push_opt(int c, const char *arg, void *opaque)
{
	struct push *p = opaque;

	(void)c; /* --as, the only one */
	p->as = arg;
	return 0;
}

int cmd_push(int argc, char **argv)
{
	static const struct option own[] = {
	    {"as", required_argument, NULL, 256},
	    {NULL, 0, NULL, 0},
	};
	struct tool_opts o = {.want = TOOL_OPT_CACHE | TOOL_OPT_KEYS |
				      TOOL_OPT_SERVER};
	struct push p;
	struct fetch_config cfg = {0};
	_cleanup_free_ char *token = NULL;
	int r;

	memset(&p, 0, sizeof(p));
	r = tool_parse(argc, argv, &o, own, push_opt, &p, usage);
	if (r >= 0)
		return r;
	if (argc - optind != 1 || !p.as) {
		usage(stderr);
		return 2;
	}
	if (tool_image_url(&o, argv[optind], &cfg, &p.url))
		return 2;
	if (!image_name_valid(p.as)) {
		log_error("--as %s: not a valid image name", p.as);
		return 2;
	}
	if (tool_read_token(&o, &token) < 0)
		return 1;
	r = upload_fetch_new(&cfg, p.url.base, token, &p.fetch);
	if (r == 0)
		r = run(&p, o.cache, &o.keys);
	cache_free(p.cache);
	fetch_free(p.fetch);
	manifest_fini(&p.man);
	if (token)
		crypto_cleanse(token, strlen(token));
	return r < 0 ? 1 : 0;
}
