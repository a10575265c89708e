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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "manifest.h"
#include "mutex.h"
#include "progress.h"
#include "util.h"

#include "../fusefs/crypto.h"
#include "../fusefs/fetch.h"
#include "../fusefs/remote.h"
#include "commands.h"

#define PUBLISH_BATCH_BLOCKS 256
#define PUBLISH_INFLIGHT     8

struct publish {
	struct fetch *fetch;
	struct remote_url url;
	uint32_t bs;
	uint64_t size, nblocks;
	int manifest_fd; /* unlinked temp file: header + hashes */
	uint64_t n_zero, n_uploaded, n_present, bytes_uploaded;

	/* Upload completions (fetch thread -> this thread). */
	pthread_mutex_t lock; /* protects done_count, first_error */
	pthread_cond_t cond;
	unsigned done_count;
	int first_error;
	char first_errmsg[256];
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
	    "      --insecure         do not verify the server (loudly)\n"
	    "      --block-size SIZE  for a new image (default 64K)\n"
	    "  -h, --help             this help\n");
}

static void on_put_done(struct fetch_req *req)
{
	struct publish *p = req->opaque;

	mutex_lock(&p->lock);
	if (req->result < 0 && !p->first_error) {
		p->first_error = req->result;
		snprintf(p->first_errmsg, sizeof(p->first_errmsg), "%s",
			 req->errmsg);
	}
	p->done_count++;
	cond_signal(&p->cond);
	mutex_unlock(&p->lock);
}

/* Upload the blocks of one batch that the server lacks. */
static int upload_batch(struct publish *p, const uint8_t *data,
			const uint8_t *hashes, uint32_t n, uint64_t first)
{
	_cleanup_free_ uint8_t *want = malloc((size_t)n * VMF_HASH_LEN);
	_cleanup_free_ uint8_t *missing = malloc((size_t)n * VMF_HASH_LEN);
	_cleanup_free_ struct fetch_req *reqs = calloc(n, sizeof(*reqs));
	_cleanup_free_ char *paths = malloc((size_t)n * 96);
	struct fetch_req q = {0};
	uint32_t nwant = 0, nmissing, submitted = 0;
	int r;

	if (!want || !missing || !reqs || !paths)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		if (hash_is_zero(hashes + i * VMF_HASH_LEN))
			continue;
		memcpy(want + nwant * VMF_HASH_LEN, hashes + i * VMF_HASH_LEN,
		       VMF_HASH_LEN);
		nwant++;
	}
	if (nwant == 0)
		return 0;
	q.path = VMF_PATH_BLOCKS "/" VMF_SEG_MISSING;
	q.method = "POST";
	q.body = want;
	q.body_len = (size_t)nwant * VMF_HASH_LEN;
	q.buf = missing;
	q.buf_len = (size_t)n * VMF_HASH_LEN;
	r = fetch_run(p->fetch, &q);
	if (r < 0)
		return log_error_errno(r, "asking for missing blocks: %s",
				       q.errmsg);
	if (q.got % VMF_HASH_LEN)
		return log_error_errno(-EBADMSG, "malformed missing-blocks "
						 "reply");
	nmissing = (uint32_t)(q.got / VMF_HASH_LEN);
	p->n_present += nwant - nmissing;

	mutex_lock(&p->lock);
	p->done_count = 0;
	mutex_unlock(&p->lock);
	/* Each missing hash: find its block in the batch and PUT it. */
	for (uint32_t m = 0; m < nmissing; m++) {
		const uint8_t *h = missing + m * VMF_HASH_LEN;
		uint32_t i;
		char hex[VMF_HASH_HEX_LEN + 1];

		for (i = 0; i < n; i++)
			if (memcmp(hashes + i * VMF_HASH_LEN, h,
				   VMF_HASH_LEN) == 0)
				break;
		if (i == n)
			return log_error_errno(-EBADMSG, "the server asked "
							 "for a block we did "
							 "not offer");
		hash_to_hex(h, VMF_HASH_LEN, hex);
		snprintf(paths + m * 96, 96, VMF_PATH_BLOCKS "/%s", hex);
		reqs[m].path = paths + m * 96;
		reqs[m].method = "PUT";
		reqs[m].body = data + (size_t)i * p->bs;
		reqs[m].body_len = manifest_block_len(
		    &(struct manifest_header){.block_size = p->bs,
					      .image_size = p->size},
		    first + i);
		reqs[m].buf = NULL;
		reqs[m].buf_len = 0;
		reqs[m].prio = FETCH_PRIO_DEMAND;
		reqs[m].done = on_put_done;
		reqs[m].opaque = p;
		/* Keep at most PUBLISH_INFLIGHT in flight. */
		mutex_lock(&p->lock);
		while (submitted - p->done_count >= PUBLISH_INFLIGHT)
			cond_wait(&p->cond, &p->lock);
		mutex_unlock(&p->lock);
		fetch_submit(p->fetch, &reqs[m]);
		submitted++;
		p->bytes_uploaded += reqs[m].body_len;
	}
	mutex_lock(&p->lock);
	while (p->done_count < submitted)
		cond_wait(&p->cond, &p->lock);
	r = p->first_error;
	mutex_unlock(&p->lock);
	if (r < 0)
		return log_error_errno(r, "uploading blocks: %s",
				       p->first_errmsg);
	p->n_uploaded += nmissing;
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
	uint8_t hdr[MANIFEST_HEADER_SIZE], id[16];
	char idhex[33], hdrs[2][96], path[256], reply[4096];
	void *map;
	int r = 0;

	manifest_header_encode(&h, hdr);
	r = full_pwrite(p->manifest_fd, hdr, sizeof(hdr), 0);
	if (r < 0)
		return log_error_errno(r, "writing the manifest: %m");
	map = mmap(NULL, total, PROT_READ, MAP_SHARED, p->manifest_fd, 0);
	if (map == MAP_FAILED)
		return log_error_errno(-errno, "mapping the manifest: %m");
	r = crypto_random(id, sizeof(id));
	hash_to_hex(id, sizeof(id), idhex);
	snprintf(hdrs[0], sizeof(hdrs[0]), VMF_HDR_COMMIT_ID ": %s", idhex);
	snprintf(hdrs[1], sizeof(hdrs[1]), VMF_HDR_BASE ": %" PRIu64, base);
	snprintf(path, sizeof(path), VMF_PATH_IMAGES "/%s/" VMF_SEG_VERSIONS,
		 p->url.name);
	for (int attempt = 0; r == 0 && attempt < 4; attempt++) {
		struct fetch_req q = {0};
		json_t *o;

		q.path = path;
		q.method = "POST";
		q.body = map;
		q.body_len = total;
		q.extra_headers[0] = hdrs[0];
		q.extra_headers[1] = hdrs[1];
		q.buf = reply;
		q.buf_len = sizeof(reply) - 1;
		q.prio = FETCH_PRIO_DEMAND;
		r = fetch_run(p->fetch, &q);
		if (r == 0) {
			reply[q.got] = '\0';
			o = json_loads(reply, 0, NULL);
			r = json_is_integer(json_object_get(o, "version"))
				? 0
				: -EBADMSG;
			if (r == 0)
				*ret_version = (uint64_t)json_integer_value(
				    json_object_get(o, "version"));
			json_decref(o);
			break;
		}
		/* Only a lost answer is worth the same commit again. */
		if (r != -ETIMEDOUT && r != -EIO && r != -ECONNREFUSED) {
			log_error("commit refused: %s", q.errmsg);
			break;
		}
		log_warn("commit: %s; retrying with the same commit id",
			 q.errmsg);
		sleep(1 << attempt);
		r = 0;
	}
	munmap(map, total);
	return r;
}

int cmd_publish(int argc, char **argv)
{
	enum { OPT_TOKEN_FILE = 256, OPT_CACERT, OPT_INSECURE, OPT_BS };
	static const struct option longopts[] = {
	    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
	    {"cacert", required_argument, NULL, OPT_CACERT},
	    {"insecure", no_argument, NULL, OPT_INSECURE},
	    {"block-size", required_argument, NULL, OPT_BS},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct publish p = {.manifest_fd = -1};
	struct fetch_config cfg = {0};
	struct remote_image img;
	_cleanup_free_ char *token = NULL;
	_cleanup_close_ int fd = -1;
	const char *token_file = NULL, *why;
	uint64_t bs = VMF_BLOCK_SIZE_DEFAULT, base = 0, version = 0;
	char errbuf[256];
	struct stat st;
	int c, r, status = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_TOKEN_FILE:
			token_file = optarg;
			break;
		case OPT_CACERT:
			cfg.cacert = optarg;
			break;
		case OPT_INSECURE:
			cfg.insecure = true;
			break;
		case OPT_BS:
			if (parse_size(optarg, &bs) < 0 ||
			    bs < VMF_BLOCK_SIZE_MIN ||
			    bs > VMF_BLOCK_SIZE_MAX || (bs & (bs - 1))) {
				log_error("--block-size: a power of two from "
					  "4K to 4M");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (remote_parse_url(argv[optind], &p.url, &why) < 0) {
		log_error("bad URL \"%s\": %s", argv[optind], why);
		return 2;
	}
	r = remote_read_token(token_file, &token);
	if (r < 0) {
		if (r == -ENOKEY)
			log_error("no token: use --token-file FILE or set "
				  "VMFERRY_TOKEN");
		else
			log_error_errno(r, "token: %m");
		return 1;
	}
	fd = open(argv[optind + 1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_error_errno(-errno, "%s: %m", argv[optind + 1]);
		return 1;
	}
	if (cfg.insecure)
		log_warn("--insecure: the server's identity is NOT verified");
	cfg.base_url = p.url.base;
	cfg.token = token;
	cfg.connect_timeout_s = 10;
	cfg.stall_timeout_s = 60;
	cfg.max_inflight = PUBLISH_INFLIGHT + 1;
	cfg.max_background = 1;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	r = fetch_new(&cfg, &p.fetch);
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
