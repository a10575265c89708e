/* SPDX-License-Identifier: MIT */
/* The image's write path and dirty set: writes become dirty jobs for the
 * writer (image_store.c); flush waits for them; the dirty set is loaded
 * at mount, cleared after a commit, or adopted when the server already
 * holds it.  Threading and lock order: see image.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hash.h"
#include "log.h"
#include "util.h"

#include "cache.h"
#include "image_int.h"

/* --max-cache, under im->lock: a block not written yet may become
 * written only while the written blocks fit the bound (the others can be
 * evicted).  Waits up to the I/O timeout for a sync to make room (it
 * turns synced blocks into evictable ones), then -ENOSPC. */
static int wait_for_room(struct image *im, uint64_t b)
{
	uint64_t deadline = now_ns() + im->io_timeout_ns, now;

	if (!im->max_blocks || bit_get(im->written, b) ||
	    im->written_count < im->max_blocks)
		return 0;
	while (im->written_count >= im->max_blocks && !im->writer_stop &&
	       (now = now_ns()) < deadline)
		cond_wait_ns(&im->cond, &im->lock, deadline - now);
	return im->written_count < im->max_blocks ? 0 : -ENOSPC;
}

/* Queue the new contents of block b (owned buf, the whole block) for the
 * writer as a dirty job.  The caller holds b's write lock. */
static int queue_dirty(struct image *im, uint64_t b, uint8_t *buf)
{
	struct store_job *j = calloc(1, sizeof(*j));
	bool *ok = calloc(1, sizeof(bool));
	uint32_t blen = manifest_block_len(&im->hdr, b);
	int r;

	if (!j || !ok) {
		free(j);
		free(ok);
		free(buf);
		return -ENOMEM;
	}
	ok[0] = true;
	j->first = b;
	j->count = 1;
	j->buf = buf;
	j->ok = ok;
	j->bytes = im->hdr.block_size;
	j->dirty = true;
	if (hash_is_zero_buf(buf, blen))
		memset(j->hash, 0, VMF_HASH_LEN);
	else
		hash_sha256(buf, blen, j->hash);
	lock(im);
	/* The same contents as now (a rewrite of what was there): nothing
	 * changes, nothing becomes dirty, no empty version later. */
	if (memcmp(image_cur_hash(im, b), j->hash, VMF_HASH_LEN) == 0) {
		unlock(im);
		free(j->buf);
		free(j->ok);
		free(j);
		return 0;
	}
	while (im->jobs_bytes > IMAGE_MAX_QUEUED && !im->writer_stop &&
	       !im->store_full)
		cond_wait(&im->cond, &im->lock);
	/* A full file system: refused, not queued (see write_range()). */
	r = im->store_full ? -ENOSPC : wait_for_room(im, b);
	if (r == 0)
		r = image_set_dirty(im, b, j->hash);
	if (r < 0) {
		unlock(im);
		free(j->buf);
		free(j->ok);
		free(j);
		return r;
	}
	j->gen = ++im->next_gen;
	j->seq = ++im->dirty_queued;
	*im->jobs_tail = j;
	im->jobs_tail = &j->next;
	im->jobs_bytes += j->bytes;
	cond_signal(&im->writer_cond);
	unlock(im);
	return 0;
}

/* Write into one block: the bytes [s, e) of the image, from src (NULL:
 * zeros). */
static int write_block(struct image *im, uint64_t b, const uint8_t *src,
		       uint64_t s, uint64_t e)
{
	uint32_t bs = im->hdr.block_size;
	uint32_t blen = manifest_block_len(&im->hdr, b);
	uint64_t bo = b * bs;
	uint8_t *content = malloc(bs);
	ssize_t n;
	int r;

	if (!content)
		return -ENOMEM;
	memset(content + blen, 0, bs - blen);
	/* One writer per block at a time, and never while a fetch of it
	 * is in flight: its stale contents must be stored first. */
	lock(im);
	while (bit_get(im->wlock, b) || bit_get(im->busy, b))
		cond_wait(&im->cond, &im->lock);
	bit_set(im->wlock, b);
	unlock(im);
	if (s > bo || e < bo + blen) {
		/* A partial write: the rest of the block must survive, so
		 * read it first (from the queue, the cache or the server). */
		n = image_read(im, content, blen, bo);
		r = n == (ssize_t)blen ? 0 : n < 0 ? (int)n : -EIO;
		if (r < 0) {
			free(content);
			goto out;
		}
	}
	if (src)
		memcpy(content + (s - bo), src, e - s);
	else
		memset(content + (s - bo), 0, e - s);
	r = queue_dirty(im, b, content);
out:
	lock(im);
	bit_clear(im->wlock, b);
	cond_broadcast(&im->cond);
	unlock(im);
	return r;
}

/* Under im->lock: with the file system found full, have the writer try
 * its kept jobs again now (space may be back) and wait for that
 * attempt.  True if the store is (still) full. */
static bool still_full(struct image *im)
{
	uint64_t attempts = im->store_attempts;

	if (!im->store_full)
		return false;
	cond_signal(&im->writer_cond);
	while (im->store_attempts == attempts && !im->writer_stop)
		cond_wait(&im->cond, &im->lock);
	return im->store_full;
}

/* image_write() and image_zero(): buf NULL writes zeros. */
static ssize_t write_range(struct image *im, const uint8_t *buf, size_t len,
			   uint64_t off)
{
	uint32_t bs = im->hdr.block_size;
	uint64_t first, last;
	bool failed, full;
	int r;

	lock(im);
	failed = im->write_failed;
	full = !failed && still_full(im);
	unlock(im);
	if (failed)
		return -EIO;
	/* Refused before anything is queued: nothing acknowledged is at
	 * stake, and the guest sees a full disk, not an I/O error. */
	if (full)
		return -ENOSPC;
	if (off >= im->hdr.image_size)
		return len ? -ENOSPC : 0;
	if (len > im->hdr.image_size - off)
		len = (size_t)(im->hdr.image_size - off);
	if (len == 0)
		return 0;
	first = off / bs;
	last = (off + len - 1) / bs;
	r = image_load_manifest(im, first, last - first + 1);
	if (r < 0)
		return -EIO;
	for (uint64_t b = first; b <= last; b++) {
		uint64_t bo = b * bs, s = off > bo ? off : bo;
		uint64_t e = bo + manifest_block_len(&im->hdr, b);

		if (e > off + len)
			e = off + len;
		r = write_block(im, b, buf ? buf + (s - off) : NULL, s, e);
		if (r < 0 && s > off) {
			/* The blocks before went in: a short write. */
			len = (size_t)(s - off);
			break;
		}
		if (r < 0)
			return r;
	}
	lock(im);
	if (buf)
		im->stats.written_bytes += len;
	else
		im->stats.zeroed_bytes += len;
	unlock(im);
	return (ssize_t)len;
}

ssize_t image_write(struct image *im, const void *buf, size_t len, uint64_t off)
{
	return write_range(im, buf, len, off);
}

int image_zero(struct image *im, uint64_t off, uint64_t len)
{
	ssize_t n;

	if (off >= im->hdr.image_size)
		return 0;
	if (len > im->hdr.image_size - off)
		len = im->hdr.image_size - off;
	/* In pieces that fit a ssize_t on any platform. */
	while (len > 0) {
		size_t piece = len > (1u << 30) ? (1u << 30) : (size_t)len;

		n = write_range(im, NULL, piece, off);
		if (n < 0)
			return (int)n;
		off += piece;
		len -= piece;
	}
	return 0;
}

int image_flush(struct image *im)
{
	uint64_t target;
	bool retried = false;
	int r = 0;

	lock(im);
	target = im->dirty_queued;
	for (;;) {
		if (im->write_failed) {
			r = -EIO;
			break;
		}
		if (im->dirty_stored >= target)
			break;
		if (im->store_full && retried) {
			r = -ENOSPC; /* not durable yet: kept, retried */
			break;
		}
		if (im->store_full) {
			retried = true;
			(void)still_full(im); /* looked at again above */
			continue;
		}
		cond_wait(&im->cond, &im->lock);
	}
	unlock(im);
	return r;
}

static int load_one_dirty(void *opaque, uint64_t blkno, uint64_t gen,
			  const uint8_t hash[VMF_HASH_LEN])
{
	struct image *im = opaque;
	int r;

	if (blkno >= im->hdr.nblocks)
		return -EBADMSG;
	lock(im);
	r = image_set_dirty(im, blkno, hash);
	if (gen > im->next_gen)
		im->next_gen = gen;
	unlock(im);
	return r;
}

bool image_clean(struct image *im)
{
	bool clean;

	lock(im);
	clean = im->stats.blocks_dirty == 0;
	unlock(im);
	return clean;
}

void image_mark_clean(struct image *im, uint64_t blkno, const uint8_t *h)
{
	lock(im);
	/* Rewritten since the snapshot (another hash): still dirty. */
	if (bit_get(im->dirty, blkno) &&
	    memcmp(image_cur_hash(im, blkno), h, VMF_HASH_LEN) == 0) {
		bit_clear(im->dirty, blkno);
		im->stats.blocks_dirty--;
	}
	unlock(im);
}

int image_copy_manifest(struct image *im, uint8_t *out)
{
	int r = image_load_manifest(im, 0, im->hdr.nblocks);

	if (r < 0)
		return r;
	for (uint64_t p = 0; p < im->npages; p++)
		memcpy(out + p * MANIFEST_PAGE_ENTRIES * VMF_HASH_LEN,
		       im->pages[p], page_entries(im, p) * VMF_HASH_LEN);
	return 0;
}

struct adopt {
	struct image *im;
	struct cache_clean *items;
	uint8_t (*hashes)[VMF_HASH_LEN];
	size_t n, cap;
	bool match;
};

static int adopt_one(void *opaque, uint64_t blkno, uint64_t gen,
		     const uint8_t hash[VMF_HASH_LEN])
{
	struct adopt *a = opaque;
	int r;

	if (blkno >= a->im->hdr.nblocks)
		return -EBADMSG;
	r = image_load_manifest(a->im, blkno, 1);
	if (r < 0)
		return r;
	if (memcmp(base_hash(a->im, blkno), hash, VMF_HASH_LEN) != 0)
		a->match = false;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct cache_clean *ni = realloc(a->items, cap * sizeof(*ni));
		uint8_t(*nh)[VMF_HASH_LEN];

		if (!ni)
			return -ENOMEM;
		a->items = ni;
		nh = realloc(a->hashes, cap * sizeof(*nh));
		if (!nh)
			return -ENOMEM;
		a->hashes = nh;
		a->cap = cap;
	}
	a->items[a->n].blkno = blkno;
	a->items[a->n].gen = gen;
	memcpy(a->hashes[a->n], hash, VMF_HASH_LEN);
	a->n++;
	return 0;
}

int image_adopt(struct image *im)
{
	struct adopt a = {.im = im, .match = true};
	_cleanup_free_ bool *cleaned = NULL;
	char ver[32];
	int64_t n;
	int r;

	n = cache_dirty_walk(im->cache, adopt_one, &a);
	if (n < 0 || !a.match || a.n == 0) {
		r = n < 0 ? (int)n : 0;
		goto out;
	}
	cleaned = calloc(a.n, sizeof(bool));
	if (!cleaned) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(ver, sizeof(ver), "%" PRIu64, im->hdr.version);
	r = cache_clean_dirty(im->cache, a.items, a.n, cleaned, "version", ver,
			      strlen(ver));
	for (size_t i = 0; r == 0 && i < a.n; i++)
		if (cleaned[i])
			image_mark_clean(im, a.items[i].blkno, a.hashes[i]);
	r = r < 0 ? r : 1;
out:
	free(a.items);
	free(a.hashes);
	return r;
}

int64_t image_load_dirty(struct image *im)
{
	return cache_dirty_walk(im->cache, load_one_dirty, im);
}
