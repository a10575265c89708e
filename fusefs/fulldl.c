/* SPDX-License-Identifier: MIT */
/* Full download of a data file into the cache.  See fulldl.h.
 *
 * The sink (fetch thread) fills a chunk of FULLDL_CHUNK_BLOCKS blocks
 * and hands each full chunk to the image; the caller's thread flushes
 * the last, short chunk after the transfer.  The two never run at once
 * (fetch_run() returns after the last sink call), so the state needs no
 * lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hash.h"
#include "progress.h"

#include "fetch.h"
#include "fulldl.h"
#include "image.h"

#define FULLDL_CHUNK_BLOCKS 16u

struct fulldl {
	struct fetch_req req; /* first: the sink gets &d->req */
	struct image *im;
	const struct manifest_header *hdr;
	uint8_t *chunk; /* FULLDL_CHUNK_BLOCKS blocks */
	size_t fill;	/* bytes in chunk */
	uint64_t first; /* block at the start of chunk */
	uint64_t received;
	struct progress bar;
};

/* Verify and store the whole blocks in the chunk (and, if last, the
 * final short one); keep what is left of a block at the chunk's start.
 * Runs of non-zero blocks go to the image, which verifies them. */
static int flush_chunk(struct fulldl *d, bool last, char *why, size_t why_len)
{
	uint32_t bs = d->hdr->block_size;
	uint64_t n = d->fill / bs, b = 0;
	uint8_t h[VMF_HASH_LEN];
	int r;

	if (last && d->fill % bs)
		n++;
	while (b < n) {
		uint64_t blk = d->first + b, e = b;
		uint8_t *p = d->chunk + b * bs;

		r = image_manifest_hash(d->im, blk, h);
		if (r < 0)
			return r;
		if (hash_is_zero(h)) {
			if (!hash_is_zero_buf(
				p, manifest_block_len(d->hdr, blk))) {
				snprintf(why, why_len,
					 "block %" PRIu64 " should be zeros "
					 "and is not",
					 blk);
				return -EBADMSG;
			}
			b++;
			continue;
		}
		/* The run of non-zero blocks from b. */
		while (e < n) {
			r = image_manifest_hash(d->im, d->first + e, h);
			if (r < 0)
				return r;
			if (hash_is_zero(h))
				break;
			e++;
		}
		r = image_store_fetched(d->im, blk, (uint32_t)(e - b), p);
		if (r < 0) {
			snprintf(why, why_len, "storing blocks: %s",
				 strerror(-r));
			return r;
		}
		if (r > 0) {
			snprintf(why, why_len,
				 "%d of blocks %" PRIu64 "-%" PRIu64
				 " do not match the manifest",
				 r, blk, d->first + e - 1);
			return -EBADMSG;
		}
		b = e;
	}
	d->first += n;
	if (!last) {
		memmove(d->chunk, d->chunk + n * bs, d->fill - n * bs);
		d->fill -= n * bs;
	}
	return 0;
}

/* Fetch thread: append to the chunk, flushing it whenever it fills. */
static int sink(struct fetch_req *req, const void *data, size_t len)
{
	struct fulldl *d = (struct fulldl *)req;
	size_t room = (size_t)FULLDL_CHUNK_BLOCKS * d->hdr->block_size;
	const uint8_t *p = data;
	int r;

	if (len > d->hdr->image_size - d->received) {
		snprintf(req->errmsg, sizeof(req->errmsg),
			 "the server sent more than the image's %" PRIu64
			 " bytes",
			 d->hdr->image_size);
		return -EBADMSG;
	}
	d->received += len;
	while (len > 0) {
		size_t n = room - d->fill < len ? room - d->fill : len;

		memcpy(d->chunk + d->fill, p, n);
		d->fill += n;
		p += n;
		len -= n;
		if (d->fill == room) {
			r = flush_chunk(d, false, req->errmsg,
					sizeof(req->errmsg));
			if (r < 0)
				return r;
		}
	}
	progress_update(&d->bar, d->received);
	return 0;
}

int fulldl_run(struct image *im, struct fetch *f, const char *url, char *why,
	       size_t why_len)
{
	const struct manifest_header *hdr = image_header(im);
	_cleanup_free_ uint8_t *chunk =
	    calloc(FULLDL_CHUNK_BLOCKS, hdr->block_size);
	struct fulldl d;
	int r;

	if (!chunk)
		return -ENOMEM;
	memset(&d, 0, sizeof(d));
	d.im = im;
	d.hdr = hdr;
	d.chunk = chunk;
	progress_init(&d.bar, "full download", hdr->image_size);
	d.req.path = url;
	d.req.sink = sink;
	d.req.prio = FETCH_PRIO_DEMAND;
	r = fetch_run(f, &d.req);
	if (r < 0) {
		snprintf(why, why_len, "%s", d.req.errmsg);
		return r;
	}
	if (d.received != hdr->image_size) {
		snprintf(why, why_len,
			 "the download ended after %" PRIu64 " of %" PRIu64
			 " bytes",
			 d.received, hdr->image_size);
		return -EBADMSG;
	}
	/* Past the image's end the last block is not hashed; zeros keep
	 * stale bytes of the chunk out of the cache all the same. */
	memset(d.chunk + d.fill, 0,
	       (size_t)FULLDL_CHUNK_BLOCKS * hdr->block_size - d.fill);
	r = flush_chunk(&d, true, why, why_len);
	if (r < 0)
		return r;
	progress_finish(&d.bar, d.received);
	return 0;
}
