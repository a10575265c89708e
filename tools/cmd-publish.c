/* SPDX-License-Identifier: MIT */
/* `vmferry publish URL FILE`: upload a raw image as the next version.
 *
 * Streams FILE in batches: hashes each block, asks the server which
 * non-zero blocks it lacks (POST /v1/blocks/missing), uploads only those
 * with several PUTs in flight, and finally commits the manifest with a
 * random commit id (retried with the same id, so a lost reply cannot make
 * two versions).  Memory is bounded by one batch; the manifest's hashes
 * go to an unlinked temporary file, mapped for the final upload.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "manifest.h"
#include "progress.h"
#include "util.h"

#include "../fusefs/crypto.h"
#include "../fusefs/fetch.h"
#include "../fusefs/remote.h"
#include "../fusefs/upload.h"
#include "commands.h"
#include "toolopts.h"

#define PUBLISH_BATCH_BLOCKS 256

struct publish {
	struct fetch *fetch;
	struct remote_url url;
	uint32_t bs;
	uint64_t size, nblocks;
	int manifest_fd; /* unlinked temp file: header + hashes */
	uint64_t n_zero, n_uploaded, n_present, bytes_uploaded;
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmferry publish [OPTIONS] https://HOST:PORT/NAME FILE\n"
	    "\n"
	    "Upload the raw disk image FILE as the next version of NAME (a new\n"
	    "image if NAME does not exist).  Only blocks the server lacks are\n"
	    "sent; zero blocks never are.\n"
	    "\n"
	    "      --token-file FILE  bearer token (default: $VMFERRY_TOKEN)\n"
	    "      --cacert FILE      trust this CA or self-signed certificate\n"
	    "      --pin-sha256 B64   also require this server public key\n"
	    "      --insecure         do not verify the server (loudly)\n"
	    "      --block-size SIZE  for a new image (default 64K)\n"
	    "  -h, --help             this help\n");
}

/* Upload the blocks of one batch that the server lacks. */
static int upload_batch(struct publish *p, const uint8_t *data,
			const uint8_t *hashes, uint32_t n, uint64_t first)
{
	struct upload_block blocks[PUBLISH_BATCH_BLOCKS];
	struct manifest_header h = {.block_size = p->bs, .image_size = p->size};
	struct upload_stats st = {0};
	char why[256];
	int r;

	for (uint32_t i = 0; i < n; i++) {
		blocks[i].hash = hashes + i * VMF_HASH_LEN;
		blocks[i].buf = data + (size_t)i * p->bs;
		blocks[i].len = manifest_block_len(&h, first + i);
	}
	r = upload_blocks(p->fetch, blocks, n, &st, why);
	if (r < 0)
		return log_error_errno(r, "%s", why);
	p->n_uploaded += st.uploaded;
	p->n_present += st.present;
	p->bytes_uploaded += st.bytes;
	return 0;
}

static int hash_and_upload(struct publish *p, int fd)
{
	size_t room = (size_t)PUBLISH_BATCH_BLOCKS * p->bs;
	_cleanup_free_ uint8_t *data = malloc(room);
	_cleanup_free_ uint8_t *hashes =
	    malloc(PUBLISH_BATCH_BLOCKS * VMF_HASH_LEN);
	struct progress prog;
	uint64_t blk = 0;
	int r;

	if (!data || !hashes)
		return log_oom();
	progress_init(&prog, "publish", p->size);
	while (blk < p->nblocks) {
		uint32_t n = PUBLISH_BATCH_BLOCKS;
		uint64_t off = blk * p->bs, len;

		if (n > p->nblocks - blk)
			n = (uint32_t)(p->nblocks - blk);
		len = (uint64_t)n * p->bs;
		if (off + len > p->size)
			len = p->size - off;
		r = full_pread(fd, data, (size_t)len, (off_t)off);
		if (r < 0)
			return log_error_errno(r, "reading the image: %m");
		memset(data + len, 0, room - len);
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *b = data + (size_t)i * p->bs;
			size_t blen =
			    i == n - 1 ? len - (size_t)i * p->bs : p->bs;

			if (hash_is_zero_buf(b, blen)) {
				memset(hashes + i * VMF_HASH_LEN, 0,
				       VMF_HASH_LEN);
				p->n_zero++;
			} else {
				hash_sha256(b, blen, hashes + i * VMF_HASH_LEN);
			}
		}
		r = upload_batch(p, data, hashes, n, blk);
		if (r < 0)
			return r;
		r = full_pwrite(p->manifest_fd, hashes,
				(size_t)n * VMF_HASH_LEN,
				(off_t)manifest_entry_offset(blk));
		if (r < 0)
			return log_error_errno(r, "writing the manifest: %m");
		blk += n;
		progress_update(&prog, off + len);
	}
	progress_finish(&prog, p->size);
	return 0;
}

static int commit(struct publish *p, uint64_t base, uint64_t *ret_version)
{
	struct manifest_header h = {
	    .block_size = p->bs, .image_size = p->size, .nblocks = p->nblocks};
	uint64_t total = manifest_encoded_size(&h);
	uint8_t hdr[MANIFEST_HEADER_SIZE];
	char why[256];
	void *map;
	int r;

	manifest_header_encode(&h, hdr);
	r = full_pwrite(p->manifest_fd, hdr, sizeof(hdr), 0);
	if (r < 0)
		return log_error_errno(r, "writing the manifest: %m");
	map = mmap(NULL, total, PROT_READ, MAP_SHARED, p->manifest_fd, 0);
	if (map == MAP_FAILED)
		return log_error_errno(-errno, "mapping the manifest: %m");
	r = upload_commit(p->fetch, p->url.name, base, map, total, NULL, NULL,
			  ret_version, why);
	munmap(map, total);
	if (r < 0)
		log_error("commit refused: %s", why);
	return r;
}

static int publish_opt(int c, const char *arg, void *opaque)
{
	uint64_t *bs = opaque;

	(void)c; /* --block-size, the only one */
	if (parse_size(arg, bs) < 0 || *bs < VMF_BLOCK_SIZE_MIN ||
	    *bs > VMF_BLOCK_SIZE_MAX || (*bs & (*bs - 1))) {
		log_error("--block-size: a power of two from 4K to 4M");
		return 2;
	}
	return 0;
}

int cmd_publish(int argc, char **argv)
{
	static const struct option own[] = {
	    {"block-size", required_argument, NULL, 256},
	    {NULL, 0, NULL, 0},
	};
	struct tool_opts o = {.want = TOOL_OPT_SERVER};
	struct publish p = {.manifest_fd = -1};
	struct fetch_config cfg = {0};
	struct remote_image img;
	_cleanup_free_ char *token = NULL;
	_cleanup_close_ int fd = -1;
	uint64_t bs = VMF_BLOCK_SIZE_DEFAULT, base = 0, version = 0;
	char errbuf[256];
	struct stat st;
	int r, status = 1;

	r = tool_parse(argc, argv, &o, own, publish_opt, &bs, usage);
	if (r >= 0)
		return r;
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (tool_image_url(&o, argv[optind], &cfg, &p.url))
		return 2;
	if (tool_read_token(&o, &token) < 0)
		return 1;
	fd = open(argv[optind + 1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_error_errno(-errno, "%s: %m", argv[optind + 1]);
		return 1;
	}
	r = upload_fetch_new(&cfg, p.url.base, token, &p.fetch);
	if (r < 0) {
		log_error_errno(r, "starting the fetch engine: %m");
		goto out;
	}
	r = remote_get_image(p.fetch, p.url.name, &img, errbuf);
	if (r == 0) {
		base = img.version;
		bs = img.block_size;
	} else if (r != -ENOENT) {
		log_error("%s: %s (%s)", argv[optind], remote_strerror(r),
			  errbuf);
		goto out;
	}
	p.bs = (uint32_t)bs;
	p.size = (uint64_t)st.st_size;
	p.nblocks = manifest_nblocks(p.size, p.bs);
	p.manifest_fd = open(".", O_TMPFILE | O_RDWR, 0600);
	if (p.manifest_fd < 0)
		p.manifest_fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	if (p.manifest_fd < 0) {
		log_error_errno(-errno, "temporary manifest file: %m");
		goto out;
	}
	r = hash_and_upload(&p, fd);
	if (r < 0)
		goto out;
	r = commit(&p, base, &version);
	if (r < 0)
		goto out;
	printf("published %s version %" PRIu64 ": %" PRIu64 " blocks, %" PRIu64
	       " uploaded (%" PRIu64 " bytes), %" PRIu64
	       " already on the server, %" PRIu64 " zero\n",
	       p.url.name, version, p.nblocks, p.n_uploaded, p.bytes_uploaded,
	       p.n_present, p.n_zero);
	status = 0;
out:
	fetch_free(p.fetch);
	if (p.manifest_fd >= 0)
		close(p.manifest_fd);
	if (token)
		crypto_cleanse(token, strlen(token));
	return status;
}
