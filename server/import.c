/* SPDX-License-Identifier: MIT */
/* Streaming import of a raw image.
 *
 * Owns, for one call, one block buffer and the temporary manifest it
 * writes in DIR/tmp; the manifest is written as it goes (the header
 * first, since the size is known), then committed by versions_commit().
 * Single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "manifest.h"
#include "progress.h"
#include "util.h"

#include "import.h"
#include "store.h"
#include "versions.h"

#define HASH_BATCH 1024 /* manifest entries buffered per write */

struct import_ctx {
	struct store *store;
	int mfd;	    /* temporary manifest */
	uint8_t *hashes;    /* HASH_BATCH entries */
	size_t nhashes;	    /* buffered */
	uint64_t moff;	    /* where the buffer goes in the manifest */
	struct import_result res;
};

static int flush_hashes(struct import_ctx *c)
{
	size_t len = c->nhashes * VMF_HASH_LEN;
	int r;

	r = full_pwrite(c->mfd, c->hashes, len, (off_t)c->moff);
	if (r < 0)
		return r;
	c->moff += len;
	c->nhashes = 0;
	return 0;
}

/* Hash one block, store it if new, and append its manifest entry. */
static int import_block(struct import_ctx *c, const uint8_t *buf, size_t len)
{
	uint8_t *h = c->hashes + c->nhashes * VMF_HASH_LEN;
	bool created;
	int r;

	if (hash_is_zero_buf(buf, len)) {
		memset(h, 0, VMF_HASH_LEN);
		c->res.zero_blocks++;
	} else {
		hash_sha256(buf, len, h);
		r = store_put(c->store, h, buf, len, &created);
		if (r < 0)
			return r;
		if (created)
			c->res.new_blocks++;
		else
			c->res.present_blocks++;
	}
	c->nhashes++;
	if (c->nhashes == HASH_BATCH)
		return flush_hashes(c);
	return 0;
}

static int file_size(int fd, uint64_t *ret)
{
	off_t end = lseek(fd, 0, SEEK_END);

	if (end < 0)
		return -errno;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	*ret = (uint64_t)end;
	return 0;
}

static int read_blocks(struct import_ctx *c, int fd, uint32_t block_size,
		       const char *name, bool show_progress)
{
	_cleanup_free_ uint8_t *buf = malloc(block_size);
	struct progress p;
	uint64_t done = 0;
	int r;

	if (!buf)
		return -ENOMEM;
	progress_init(&p, name, c->res.size);
	p.tty = p.tty && show_progress;
	for (uint64_t i = 0; i < c->res.nblocks; i++) {
		size_t want = c->res.size - done < block_size
				      ? (size_t)(c->res.size - done)
				      : block_size;
		ssize_t n = read_up_to(fd, buf, want);

		if (n < 0)
			return (int)n;
		if ((size_t)n != want)
			return -EIO; /* the file shrank under us */
		r = import_block(c, buf, want);
		if (r < 0)
			return r;
		done += want;
		progress_update(&p, done);
	}
	if (c->nhashes > 0) {
		r = flush_hashes(c);
		if (r < 0)
			return r;
	}
	progress_finish(&p, done);
	return 0;
}

static int write_header(struct import_ctx *c, uint32_t block_size)
{
	struct manifest_header h = {
		.block_size = block_size,
		.image_size = c->res.size,
		.nblocks = c->res.nblocks,
	};
	uint8_t hdr[MANIFEST_HEADER_SIZE];

	if (manifest_header_check(&h) < 0)
		return -EINVAL;
	manifest_header_encode(&h, hdr);
	c->moff = MANIFEST_HEADER_SIZE;
	return full_pwrite(c->mfd, hdr, sizeof(hdr), 0);
}

int import_file(struct store *s, struct versions *v, const char *name,
		const char *path, uint32_t block_size, bool show_progress,
		struct import_result *ret)
{
	_cleanup_free_ uint8_t *hashes = malloc(HASH_BATCH * VMF_HASH_LEN);
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1, mfd = -1;
	struct import_ctx c = {.store = s};
	struct commit_request req = {name, NULL, VERSIONS_BASE_ANY};
	struct commit_result cr;
	int r;

	if (!hashes)
		return -ENOMEM;
	if (!image_name_valid(name) || block_size < VMF_BLOCK_SIZE_MIN ||
	    block_size > VMF_BLOCK_SIZE_MAX || (block_size & (block_size - 1)))
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = file_size(fd, &c.res.size);
	if (r < 0)
		return r;
	if (c.res.size > VMF_IMAGE_SIZE_MAX)
		return -EFBIG;
	/* Advice only; a failure changes nothing but speed. */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	c.res.nblocks = manifest_nblocks(c.res.size, block_size);
	mfd = store_mktemp(s, "import", &tmp);
	if (mfd < 0)
		return mfd;
	c.mfd = mfd;
	c.hashes = hashes;
	r = write_header(&c, block_size);
	if (r == 0)
		r = read_blocks(&c, fd, block_size, name, show_progress);
	if (r < 0) {
		(void)unlink(tmp); /* best effort; r is the error */
		return r;
	}
	r = versions_commit(v, &req, mfd, tmp, &cr);
	if (r < 0)
		return r;
	c.res.version = cr.version;
	*ret = c.res;
	return 0;
}
