/* SPDX-License-Identifier: MIT */
/* One image version as a flat byte range over cached and remote blocks.
 *
 * Owns the manifest pages, the bitmap of cached blocks and the bitmap of
 * blocks a demand reader is fetching.  Reads go: zero block -> memset;
 * cached -> cache_get (which authenticates against the manifest hash);
 * otherwise the run of adjacent missing blocks (plus read-ahead) is
 * fetched in one range request, each block is hashed and compared with
 * the manifest, the good ones are stored and returned.  A block that
 * fails verification is never returned: the fetch is retried with
 * backoff until io_timeout_s, then the read fails with EIO.
 *
 * Verified blocks are handed to the image's writer thread, which stores
 * everything queued in one LMDB transaction: a reader gets its bytes as
 * soon as they verify, without waiting for a commit's fsync.  A queued
 * block stays "busy" until it is stored, so nobody fetches it twice and a
 * reader of it waits for the store, then reads it from the cache.
 *
 * Lock order: im->lock is a leaf lock (nothing else is taken while it is
 * held).  fetch and cache have their own internal locks, never called
 * with im->lock held.  Nothing blocks while holding im->lock: manifest
 * pages and blocks are marked "loading"/"busy" under the lock, fetched
 * without it, and waiters sleep on im->cond.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "hash.h"
#include "log.h"
#include "mutex.h"
#include "util.h"

#include "cache.h"
#include "fetch.h"
#include "image.h"
#include "profile.h"

#include "image_int.h"

/* Under im->lock: the block's current hash (the written one if dirty). */
const uint8_t *image_cur_hash(struct image *im, uint64_t b)
{
	if (bit_get(im->written, b))
		return im->dirty_hashes[b / MANIFEST_PAGE_ENTRIES] +
		       (b % MANIFEST_PAGE_ENTRIES) * VMF_HASH_LEN;
	return base_hash(im, b);
}

/* Under im->lock: record b as written with hash h. */
int image_set_dirty(struct image *im, uint64_t b, const uint8_t *h)
{
	uint8_t **page = &im->dirty_hashes[b / MANIFEST_PAGE_ENTRIES];

	if (!*page) {
		*page = calloc(MANIFEST_PAGE_ENTRIES, VMF_HASH_LEN);
		if (!*page)
			return -ENOMEM;
	}
	memcpy(*page + (b % MANIFEST_PAGE_ENTRIES) * VMF_HASH_LEN, h,
	       VMF_HASH_LEN);
	if (!bit_get(im->dirty, b)) {
		bit_set(im->dirty, b);
		im->stats.blocks_dirty++;
	}
	if (!bit_get(im->written, b)) {
		bit_set(im->written, b);
		im->written_count++;
	}
	image_lru_remove(im, b); /* never evicted until a commit holds it */
	return 0;
}

int image_new(const struct image_config *cfg, struct fetch *f, struct cache *c,
	      struct image **ret)
{
	struct image *im;
	uint64_t nb = cfg->hdr.nblocks;
	size_t mapsz = (size_t)(nb / 8 + 1);
	int64_t n;
	int r;

	if (manifest_header_check(&cfg->hdr) < 0)
		return -EINVAL;
	im = calloc(1, sizeof(*im));
	if (!im)
		return -ENOMEM;
	im->hdr = cfg->hdr;
	im->npages =
	    nb / MANIFEST_PAGE_ENTRIES + (nb % MANIFEST_PAGE_ENTRIES != 0);
	im->io_timeout_ns = cfg->io_timeout_s * 1000000000ull;
	im->readahead_blocks = cfg->readahead_blocks;
	im->prev_version = cfg->prev_version;
	im->max_blocks = cfg->max_blocks;
	im->profile = cfg->profile;
	im->fetch = f;
	im->cache = c;
	im->name = strdup(cfg->name);
	im->data_path = strdup(cfg->data_path);
	im->manifest_path = strdup(cfg->manifest_path);
	im->pages = calloc(im->npages + 1, sizeof(*im->pages));
	im->page_state = calloc(im->npages + 1, 1);
	im->present = calloc(mapsz, 1);
	im->busy = calloc(mapsz, 1);
	im->bg = calloc(mapsz, 1);
	im->dirty = calloc(mapsz, 1);
	im->written = calloc(mapsz, 1);
	im->wlock = calloc(mapsz, 1);
	im->dirty_hashes = calloc(im->npages + 1, sizeof(*im->dirty_hashes));
	if (!im->name || !im->data_path || !im->manifest_path || !im->pages ||
	    !im->page_state || !im->present || !im->busy || !im->bg ||
	    !im->dirty || !im->written || !im->wlock || !im->dirty_hashes) {
		image_free(im);
		return -ENOMEM;
	}
	pthread_mutex_init(&im->lock, NULL);
	pthread_cond_init(&im->cond, NULL);
	pthread_cond_init(&im->writer_cond, NULL);
	im->jobs_tail = &im->jobs;
	im->stats.blocks_total = nb;
	im->stats.manifest_pages = im->npages;
	n = cache_present(c, nb, im->present);
	if (n < 0) {
		image_free(im);
		return (int)n;
	}
	/* blocks_cached counts verified-current blocks; it is recounted as
	 * manifest pages load (a block cached under an older version whose
	 * hash changed fails to open and is fetched again). */
	im->stats.blocks_cached = (uint64_t)n;
	r = image_lru_init(im);
	if (r < 0) {
		image_free(im);
		return r;
	}
	r = image_start_writer(im);
	if (r < 0) {
		image_free(im);
		return r;
	}
	*ret = im;
	return 0;
}

void image_free(struct image *im)
{
	if (!im)
		return;
	if (im->writer_started) {
		/* Prefetch completions queue for the writer: wait for them,
		 * then the writer drains the queue before it exits. */
		lock(im);
		while (im->prefetch_inflight)
			cond_wait(&im->cond, &im->lock);
		im->writer_stop = true;
		cond_signal(&im->writer_cond);
		cond_broadcast(&im->cond);
		unlock(im);
		pthread_join(im->writer, NULL);
	}
	if (im->pages) {
		for (uint64_t i = 0; i < im->npages; i++)
			free(im->pages[i]);
		pthread_mutex_destroy(&im->lock);
		pthread_cond_destroy(&im->cond);
		pthread_cond_destroy(&im->writer_cond);
	}
	free(im->pages);
	free(im->page_state);
	free(im->present);
	free(im->lru_prev);
	free(im->lru_next);
	for (size_t i = 0; i < im->nold_paths; i++)
		free(im->old_paths[i]);
	free(im->old_paths);
	free(im->busy);
	free(im->bg);
	free(im->dirty);
	free(im->written);
	free(im->wlock);
	if (im->dirty_hashes)
		for (uint64_t i = 0; i < im->npages; i++)
			free(im->dirty_hashes[i]);
	free(im->dirty_hashes);
	free(im->name);
	free(im->data_path);
	free(im->manifest_path);
	free(im);
}

static void page_meta_key(char *key, size_t len, uint64_t version,
			  uint64_t page)
{
	snprintf(key, len, "manifest:%" PRIu64 ":%" PRIu64, version, page);
}

int image_keep_manifest(struct image *im, uint64_t old_version,
			uint64_t version, const uint8_t *man, size_t len)
{
	struct manifest_header h;
	uint8_t enc[MANIFEST_HEADER_SIZE];
	uint64_t npages;
	char key[64];
	int r;

	if (len < MANIFEST_HEADER_SIZE ||
	    manifest_header_parse(man, MANIFEST_HEADER_SIZE, &h) < 0 ||
	    len != manifest_encoded_size(&h))
		return -EINVAL;
	h.version = version;
	npages =
	    (h.nblocks + MANIFEST_PAGE_ENTRIES - 1) / MANIFEST_PAGE_ENTRIES;
	for (uint64_t p = 0; p < npages; p++) {
		uint64_t first = p * MANIFEST_PAGE_ENTRIES;
		uint64_t n = h.nblocks - first < MANIFEST_PAGE_ENTRIES
				 ? h.nblocks - first
				 : MANIFEST_PAGE_ENTRIES;

		page_meta_key(key, sizeof(key), h.version, p);
		r = cache_meta_put(im->cache, key,
				   man + manifest_entry_offset(first),
				   (size_t)(n * VMF_HASH_LEN));
		if (r < 0)
			return r;
	}
	manifest_header_encode(&h, enc);
	r = cache_meta_put(im->cache, "header", enc, sizeof(enc));
	if (r < 0)
		return r;
	for (uint64_t p = 0; old_version && p < npages; p++) {
		page_meta_key(key, sizeof(key), old_version, p);
		r = cache_meta_del(im->cache, key);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Get one page's bytes from the cache meta or the server. */
static int page_fetch(struct image *im, uint64_t page, uint8_t **ret)
{
	uint64_t n = page_entries(im, page);
	size_t len = (size_t)(n * VMF_HASH_LEN);
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_free_ void *cached = NULL;
	char key[64];
	size_t clen;
	struct fetch_req req = {0};
	int r;

	page_meta_key(key, sizeof(key), im->hdr.version, page);
	r = cache_meta_get(im->cache, key, &cached, &clen);
	if (r == 0 && clen == len) {
		*ret = steal_ptr((uint8_t **)&cached);
		return 0;
	}
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	req.path = im->manifest_path;
	req.off = manifest_entry_offset(page * MANIFEST_PAGE_ENTRIES);
	req.len = len;
	req.buf = buf;
	req.buf_len = len;
	req.prio = FETCH_PRIO_DEMAND;
	r = fetch_run(im->fetch, &req);
	if (r < 0) {
		log_warn("%s: manifest page %" PRIu64 ": %s", im->name, page,
			 req.errmsg);
		return r;
	}
	r = cache_meta_put(im->cache, key, buf, len);
	if (r < 0) /* the page is only a copy: keep serving without it */
		log_warn_errno(r, "%s: caching manifest page %" PRIu64 ": %m",
			       im->name, page);
	*ret = steal_ptr(&buf);
	return 0;
}

/* Drop the cached blocks of a page whose hash changed since the version
 * the cache held before.  Without that version's page, drop them all. */
static void page_forget_changed(struct image *im, uint64_t page,
				const uint8_t *p)
{
	uint64_t n = page_entries(im, page), b0 = page * MANIFEST_PAGE_ENTRIES;
	_cleanup_free_ void *old = NULL;
	size_t olen = 0;
	char key[64];

	if (!im->prev_version || im->prev_version == im->hdr.version)
		return;
	page_meta_key(key, sizeof(key), im->prev_version, page);
	if (cache_meta_get(im->cache, key, &old, &olen) < 0 ||
	    olen != n * VMF_HASH_LEN)
		olen = 0;
	lock(im);
	for (uint64_t i = 0; i < n; i++) {
		if (!bit_get(im->present, b0 + i))
			continue;
		if (olen && memcmp((uint8_t *)old + i * VMF_HASH_LEN,
				   p + i * VMF_HASH_LEN, VMF_HASH_LEN) == 0) {
			im->stats.blocks_reused++;
			continue;
		}
		bit_clear(im->present, b0 + i);
		im->stats.blocks_cached--;
	}
	unlock(im);
}

/* Account for a newly loaded page: zero and data block counts. */
static void page_count(struct image *im, uint64_t page, const uint8_t *p)
{
	uint64_t n = page_entries(im, page);

	for (uint64_t i = 0; i < n; i++) {
		if (hash_is_zero(p + i * VMF_HASH_LEN))
			im->stats.blocks_zero++;
		else
			im->stats.blocks_data++;
	}
}

static int page_load(struct image *im, uint64_t page)
{
	uint8_t *p = NULL;
	int r;

	lock(im);
	for (;;) {
		if (im->page_state[page] == PAGE_LOADED) {
			unlock(im);
			return 0;
		}
		if (im->page_state[page] == PAGE_ABSENT)
			break;
		cond_wait(&im->cond, &im->lock);
	}
	im->page_state[page] = PAGE_LOADING;
	unlock(im);

	r = page_fetch(im, page, &p);
	if (r == 0)
		page_forget_changed(im, page, p);

	lock(im);
	if (r == 0) {
		im->pages[page] = p;
		im->page_state[page] = PAGE_LOADED;
		im->stats.manifest_pages_loaded++;
		page_count(im, page, p);
	} else {
		im->page_state[page] = PAGE_ABSENT;
	}
	cond_broadcast(&im->cond);
	unlock(im);
	return r;
}

int image_seed_manifest(struct image *im, const uint8_t *hashes)
{
	for (uint64_t page = 0; page < im->npages; page++) {
		size_t len = (size_t)(page_entries(im, page) * VMF_HASH_LEN);
		const uint8_t *p =
		    hashes + page * MANIFEST_PAGE_ENTRIES * VMF_HASH_LEN;
		_cleanup_free_ void *cached = NULL;
		size_t clen = 0;
		char key[64];
		int r;

		page_meta_key(key, sizeof(key), im->hdr.version, page);
		if (cache_meta_get(im->cache, key, &cached, &clen) == 0 &&
		    clen == len && memcmp(cached, p, len) == 0)
			continue;
		r = cache_meta_put(im->cache, key, p, len);
		if (r < 0)
			return r;
	}
	return 0;
}

int image_manifest_hash(struct image *im, uint64_t blkno,
			uint8_t out[VMF_HASH_LEN])
{
	int r;

	if (blkno >= im->hdr.nblocks)
		return -EINVAL;
	r = image_load_manifest(im, blkno, 1);
	if (r < 0)
		return r;
	lock(im);
	memcpy(out, base_hash(im, blkno), VMF_HASH_LEN);
	unlock(im);
	return 0;
}

int image_load_manifest(struct image *im, uint64_t first, uint64_t count)
{
	uint64_t p0, p1;
	int r;

	if (count == 0 || first >= im->hdr.nblocks)
		return 0;
	if (first + count > im->hdr.nblocks)
		count = im->hdr.nblocks - first;
	p0 = first / MANIFEST_PAGE_ENTRIES;
	p1 = (first + count - 1) / MANIFEST_PAGE_ENTRIES;
	for (uint64_t p = p0; p <= p1; p++) {
		r = page_load(im, p);
		if (r < 0)
			return r;
	}
	return 0;
}

void image_block_range(const struct image *im, uint64_t first, uint32_t count,
		       uint64_t *ret_off, uint64_t *ret_len)
{
	uint64_t off = first * im->hdr.block_size;
	uint64_t end = (first + count) * im->hdr.block_size;

	if (end > im->hdr.image_size)
		end = im->hdr.image_size;
	*ret_off = off;
	*ret_len = end - off;
}

/* Hash each block of a fetched run and compare with the manifest; set
 * ok[i].  Returns the number that failed. */
uint32_t image_verify_run(struct image *im, uint64_t first, uint32_t count,
			  const uint8_t *buf, bool *ok)
{
	uint32_t bs = im->hdr.block_size, bad = 0;

	for (uint32_t i = 0; i < count; i++) {
		uint64_t b = first + i;
		uint8_t got[VMF_HASH_LEN];

		hash_sha256(buf + (size_t)i * bs,
			    manifest_block_len(&im->hdr, b), got);
		ok[i] = memcmp(got, base_hash(im, b), VMF_HASH_LEN) == 0;
		if (!ok[i]) {
			bad++;
			log_warn("%s: block %" PRIu64
				 " failed verification against the manifest",
				 im->name, b);
		}
	}
	if (bad) {
		lock(im);
		im->stats.verify_failures += bad;
		unlock(im);
	}
	return bad;
}

/* Copy the part of block b that overlaps the read [off, off+len) from
 * src (the whole block) into the read buffer. */
void image_copy_overlap(struct image *im, uint64_t b, const uint8_t *src,
			uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t bo = b * im->hdr.block_size;
	uint64_t be = bo + manifest_block_len(&im->hdr, b);
	uint64_t s = off > bo ? off : bo;
	uint64_t e = off + len < be ? off + len : be;

	if (s < e)
		memcpy(buf + (s - off), src + (s - bo), e - s);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Retry pacing: returns false once less than 100 ms are left before the
 * deadline; otherwise sleeps *backoff, but at most half of what is left
 * (so that each try still has time before a deadline that also bounds
 * the request itself), and doubles *backoff up to 2 s. */
static bool backoff_wait(uint64_t *backoff, uint64_t deadline)
{
	uint64_t now = now_ns(), left;

	if (now + 100000000ull >= deadline)
		return false;
	left = deadline - now;
	sleep_ns(*backoff < left / 2 ? *backoff : left / 2);
	*backoff = *backoff * 2 < 2000000000ull ? *backoff * 2 : 2000000000ull;
	return true;
}

/* Fetch blocks [first, first + count) (marked busy by us) on demand,
 * verify, copy what overlaps the read, and queue them for the writer,
 * which clears their busy marks.  Blocks inside the read must all succeed
 * (retry until the deadline); read-ahead blocks past `need_end` are best
 * effort. */
static int fetch_demand(struct image *im, uint64_t first, uint32_t count,
			uint64_t need_end, uint8_t *buf, size_t len,
			uint64_t off, uint64_t deadline)
{
	uint32_t bs = im->hdr.block_size;
	uint8_t *run = malloc((size_t)count * bs);
	bool *ok = calloc(count, sizeof(bool));
	uint64_t backoff = 100000000ull;	 /* 100 ms, doubling to 2 s */
	uint64_t lo = first, hi = first + count; /* still to get */
	int r = 0, q;

	if (!run || !ok) {
		free(run);
		free(ok);
		image_release_busy(im, first, count);
		return -ENOMEM;
	}
	for (;;) {
		struct fetch_req req = {0};
		uint64_t roff, rlen;

		image_block_range(im, lo, (uint32_t)(hi - lo), &roff, &rlen);
		req.path = image_data_path(im);
		req.off = roff;
		req.len = rlen;
		req.buf = run + (lo - first) * bs;
		req.buf_len = rlen;
		req.prio = FETCH_PRIO_DEMAND;
		req.deadline_ns = deadline;
		if (fetch_run(im->fetch, &req) == 0) {
			image_verify_run(im, lo, (uint32_t)(hi - lo),
					 run + (lo - first) * bs,
					 ok + (lo - first));
			lock(im);
			im->stats.demand_fetched_blocks += hi - lo;
			unlock(im);
		} else {
			log_warn("%s: fetching blocks %" PRIu64 "-%" PRIu64
				 ": %s",
				 im->name, lo, hi - 1, req.errmsg);
		}
		/* Narrow [lo, hi) to the blocks the read still needs. */
		while (lo < hi && (ok[lo - first] || lo >= need_end))
			lo++;
		if (hi > need_end)
			hi = need_end;
		while (hi > lo && ok[hi - 1 - first])
			hi--;
		if (lo >= hi)
			break;
		if (!backoff_wait(&backoff, deadline)) {
			log_error("%s: blocks %" PRIu64 "-%" PRIu64
				  " unavailable: giving up after the I/O "
				  "timeout",
				  im->name, lo, hi - 1);
			r = -EIO;
			break;
		}
	}
	for (uint32_t i = 0; r == 0 && i < count; i++)
		if (ok[i])
			image_copy_overlap(im, first + i, run + (size_t)i * bs,
					   buf, len, off);
	/* Even after a failure the good blocks are worth keeping. */
	q = image_queue_store(im, first, count, run, ok);
	return r < 0 ? r : q;
}

/* Read a cached block into the read buffer.  Returns 0, or -ENOENT /
 * -EBADMSG when it must be fetched (absent, stale or tampered). */
static int read_cached(struct image *im, uint64_t b, uint8_t *tmp, uint8_t *buf,
		       size_t len, uint64_t off)
{
	uint64_t bo = b * im->hdr.block_size;
	uint32_t blen = manifest_block_len(&im->hdr, b);
	const uint8_t *h = base_hash(im, b);
	int r;

	if (bo >= off && bo + blen <= off + len)
		return cache_get(im->cache, b, h, buf + (bo - off), blen);
	r = cache_get(im->cache, b, h, tmp, blen);
	if (r == 0)
		image_copy_overlap(im, b, tmp, buf, len, off);
	return r;
}

/* Under im->lock: is block b one to fetch, and not claimed by a reader
 * or the writer's queue (busy)?  Hydration's may be (bg). */
static bool is_missing(struct image *im, uint64_t b)
{
	return !bit_get(im->present, b) && !bit_get(im->busy, b) &&
	       !bit_get(im->written, b) && !hash_is_zero(base_hash(im, b));
}

/* Under im->lock: is block b one we must fetch, and not someone else's? */
bool image_is_fetchable(struct image *im, uint64_t b)
{
	return is_missing(im, b) && !bit_get(im->bg, b);
}

/* Serve block b if the guest wrote it: from the writer's queue, or the
 * cache under the written hash.  Returns 1 if served, 0 if b is not
 * dirty, -EIO if written data cannot be read back (never refetched: the
 * server does not have it). */
static int read_dirty(struct image *im, uint64_t b, uint8_t *buf, size_t len,
		      uint64_t off)
{
	uint8_t h[VMF_HASH_LEN];
	_cleanup_free_ uint8_t *tmp = NULL;
	int r;

	lock(im);
	if (!bit_get(im->written, b)) {
		unlock(im);
		return 0;
	}
	if (image_copy_queued(im, b, buf, len, off)) {
		unlock(im);
		return 1;
	}
	memcpy(h, image_cur_hash(im, b), VMF_HASH_LEN);
	unlock(im);
	if (hash_is_zero(h)) {
		tmp = calloc(1, im->hdr.block_size);
		if (!tmp)
			return -ENOMEM;
		image_copy_overlap(im, b, tmp, buf, len, off);
		return 1;
	}
	tmp = malloc(im->hdr.block_size);
	if (!tmp)
		return -ENOMEM;
	r = cache_get(im->cache, b, h, tmp, manifest_block_len(&im->hdr, b));
	if (r < 0) {
		log_error_errno(r,
				"%s: written block %" PRIu64
				" cannot be read back from the cache: %m",
				im->name, b);
		return -EIO;
	}
	image_copy_overlap(im, b, tmp, buf, len, off);
	return 1;
}

/* image_load_manifest, retried with backoff until the deadline like a
 * block fetch (the server may be briefly away). */
static int load_manifest_until(struct image *im, uint64_t first, uint64_t count,
			       uint64_t deadline)
{
	uint64_t backoff = 100000000ull; /* 100 ms, doubling to 2 s */
	int r;

	for (;;) {
		r = image_load_manifest(im, first, count);
		if (r == 0)
			return 0;
		if (!backoff_wait(&backoff, deadline)) {
			log_error("%s: manifest unavailable: giving up after "
				  "the I/O timeout",
				  im->name);
			return -EIO;
		}
	}
}

/* Under im->lock: wait up to max_ns while block b's bit in bits stays
 * set (someone else's fetch of it).  The wait is not counted against
 * the reader's own try: *deadline moves by the time waited, up to
 * once the I/O timeout in all (*deadline_max, 0 until first set). */
static void wait_while_set(struct image *im, const uint8_t *bits, uint64_t b,
			   uint64_t max_ns, uint64_t *deadline,
			   uint64_t *deadline_max)
{
	uint64_t t0 = now_ns(), now = t0, cap = t0 + max_ns;

	while (bit_get(bits, b) && now < cap) {
		cond_wait_ns(&im->cond, &im->lock, cap - now);
		now = now_ns();
	}
	if (*deadline_max == 0)
		*deadline_max = *deadline + im->io_timeout_ns;
	*deadline += now - t0;
	if (*deadline > *deadline_max)
		*deadline = *deadline_max;
}

ssize_t image_read(struct image *im, void *vbuf, size_t len, uint64_t off)
{
	uint8_t *buf = vbuf;
	uint32_t bs = im->hdr.block_size;
	uint32_t max_run = IMAGE_MAX_RUN_BYTES / bs;
	_cleanup_free_ uint8_t *tmp = NULL;
	uint64_t first, last, deadline, deadline_max = 0;
	bool bg_gave_up = false;
	uint32_t ra;
	int r;

	if (off >= im->hdr.image_size || len == 0)
		return 0;
	if (len > im->hdr.image_size - off)
		len = (size_t)(im->hdr.image_size - off);
	first = off / bs;
	last = (off + len - 1) / bs;
	profile_note(im->profile, first, last);
	/* Read-ahead grows while reads are sequential (doubling up to the
	 * longest request) and drops back to the configured amount on a
	 * seek, as the kernel's does: fewer round trips for a streaming
	 * reader, no waste for a random one. */
	lock(im);
	/* "Sequential" allows some reordering: the kernel's own read-ahead
	 * arrives on several FUSE threads at once. */
	if (im->readahead_blocks && first + im->ra_window + 1 >= im->seq_next &&
	    first <= im->seq_next + im->ra_window) {
		uint32_t grown = im->ra_window * 2;

		if (grown < im->readahead_blocks)
			grown = im->readahead_blocks;
		im->ra_window = grown < max_run ? grown : max_run;
		if (last + 1 > im->seq_next)
			im->seq_next = last + 1;
	} else {
		im->ra_window = im->readahead_blocks;
		im->seq_next = last + 1;
	}
	ra = im->ra_window;
	unlock(im);
	deadline = now_ns() + im->io_timeout_ns;
	r = load_manifest_until(im, first, last - first + 1 + ra, deadline);
	if (r < 0)
		return r;

	for (uint64_t b = first; b <= last; b++) {
		uint64_t end, stop;
		bool present, busy;

		r = read_dirty(im, b, buf, len, off);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		if (hash_is_zero(base_hash(im, b))) {
			uint64_t bo = b * bs, s = off > bo ? off : bo;
			uint64_t e = bo + manifest_block_len(&im->hdr, b);

			if (e > off + len)
				e = off + len;
			memset(buf + (s - off), 0, e - s);
			continue;
		}
		lock(im);
		present = bit_get(im->present, b);
		if (present && !bit_get(im->written, b))
			image_lru_touch(im, b); /* most recently used */
		unlock(im);
		if (present) {
			if (!tmp)
				tmp = malloc(bs);
			if (!tmp)
				return -ENOMEM;
			/* Absent, stale, tampered or a failed cache: in
			 * every case the server can still serve it. */
			r = read_cached(im, b, tmp, buf, len, off);
			if (r == 0)
				continue;
			lock(im);
			if (bit_get(im->present, b)) {
				bit_clear(im->present, b);
				image_lru_remove(im, b);
				im->stats.blocks_cached--;
			}
			unlock(im);
		}

		lock(im);
		if (bit_get(im->written, b)) {
			/* Written meanwhile: take the dirty path. */
			unlock(im);
			b--;
			continue;
		}
		busy = bit_get(im->busy, b);
		if (busy && image_copy_queued(im, b, buf, len, off)) {
			unlock(im);
			continue;
		}
		if (busy && image_verify_pending(im, b)) {
			unlock(im);
			b--;
			continue;
		}
		if (busy) {
			/* Another read (or its read-ahead) is fetching it:
			 * wait, then look again (it may have failed).  That
			 * fetch is bounded by its own deadline or stall
			 * timeout, both at most the I/O timeout: wait that
			 * long at most, and do not count the wait against
			 * this read's own time for a try of its own, up to
			 * once the I/O timeout in all (so a read takes at
			 * most about twice --io-timeout). */
			wait_while_set(im, im->busy, b,
				       im->io_timeout_ns + 1000000000ull,
				       &deadline, &deadline_max);
			if (bit_get(im->busy, b)) {
				unlock(im);
				log_error("%s: block %" PRIu64
					  " unavailable: another fetch of it "
					  "outlasted the I/O timeout",
					  im->name, b);
				return -EIO;
			}
			unlock(im);
			b--;
			continue;
		}
		if (bit_get(im->present, b)) {
			unlock(im);
			b--;
			continue;
		}
		if (bit_get(im->bg, b) && !bg_gave_up) {
			/* Hydration is fetching it (it follows the reader):
			 * wait for that a little rather than fetch it
			 * twice; then it is busy (queued) or released.  If
			 * that takes too long (a stalled request), this
			 * read fetches hydration's blocks itself. */
			wait_while_set(im, im->bg, b, IMAGE_BG_WAIT_NS,
				       &deadline, &deadline_max);
			bg_gave_up = bit_get(im->bg, b);
			unlock(im);
			b--;
			continue;
		}
		/* Claim the run of fetchable blocks from b on, through the
		 * end of the read (read-ahead goes asynchronously, below). */
		stop = last + 1;
		if (stop > im->hdr.nblocks)
			stop = im->hdr.nblocks;
		if (stop - b > max_run)
			stop = b + max_run;
		for (end = b; end < stop; end++) {
			if (end > last &&
			    im->page_state[end / MANIFEST_PAGE_ENTRIES] !=
				PAGE_LOADED)
				break;
			/* Hydration's blocks too, once waiting for them
			 * took too long. */
			if (!image_is_fetchable(im, end) &&
			    !(bg_gave_up && is_missing(im, end)))
				break;
			bit_set(im->busy, end);
		}
		unlock(im);

		r = fetch_demand(im, b, (uint32_t)(end - b),
				 end < last + 1 ? end : last + 1, buf, len, off,
				 deadline);
		lock(im);
		im->demand_next = end;
		im->demand_gen++;
		unlock(im);
		if (r < 0)
			return r;
		b = (end < last + 1 ? end : last + 1) - 1;
	}
	if (ra)
		image_prefetch(im, last + 1, ra);
	lock(im);
	im->stats.read_bytes += len;
	unlock(im);
	return (ssize_t)len;
}

int image_next_missing(struct image *im, uint64_t *cursor, uint32_t max,
		       uint64_t *ret_first, uint32_t *ret_count)
{
	uint64_t b = *cursor, nb = im->hdr.nblocks;
	int r;

	if (image_cache_full(im))
		b = nb; /* --max-cache: hydration would only churn */
	while (b < nb) {
		uint64_t page = b / MANIFEST_PAGE_ENTRIES;
		uint64_t page_end = (page + 1) * MANIFEST_PAGE_ENTRIES;
		uint32_t n = 0;

		r = image_load_manifest(im, b, 1);
		if (r < 0)
			return r;
		if (page_end > nb)
			page_end = nb;
		lock(im);
		while (b < page_end && !image_is_fetchable(im, b))
			b++;
		while (b + n < page_end && n < max &&
		       image_is_fetchable(im, b + n))
			n++;
		unlock(im);
		if (n > 0) {
			*ret_first = b;
			*ret_count = n;
			*cursor = b + n;
			return 1;
		}
	}
	*cursor = nb;
	return 0;
}

void image_hydrate_started(struct image *im, uint64_t *first, uint32_t *count)
{
	uint64_t b = *first, e = *first + *count;

	lock(im);
	/* Blocks taken meanwhile at either end are left out; one is kept
	 * (a request is never empty). */
	while (e - b > 1 && !is_missing(im, b))
		b++;
	while (e - b > 1 && !is_missing(im, e - 1))
		e--;
	for (uint64_t i = b; i < e; i++)
		if (is_missing(im, i))
			bit_set(im->bg, i);
	unlock(im);
	*first = b;
	*count = (uint32_t)(e - b);
}

void image_hydrate_release(struct image *im, uint64_t first, uint32_t count)
{
	image_release_marks(im, im->bg, first, count);
}

int image_claim_listed(struct image *im, const uint64_t *list, size_t n,
		       size_t *idx, uint32_t max, uint64_t *ret_first,
		       uint32_t *ret_count)
{
	uint64_t first;
	uint32_t count = 0;
	int r;

	for (; *idx < n; (*idx)++) {
		first = list[*idx];
		if (first >= im->hdr.nblocks)
			continue;
		r = image_load_manifest(im, first, 1);
		if (r < 0)
			return r;
		lock(im);
		if (!image_is_fetchable(im, first)) {
			unlock(im);
			continue;
		}
		/* Claim first and the list's entries that extend it; a
		 * page not loaded ends the run (loading would block). */
		while (
		    *idx < n && count < max && list[*idx] == first + count &&
		    first + count < im->hdr.nblocks &&
		    im->page_state[(first + count) / MANIFEST_PAGE_ENTRIES] ==
			PAGE_LOADED &&
		    image_is_fetchable(im, first + count)) {
			bit_set(im->busy, first + count);
			count++;
			(*idx)++;
		}
		unlock(im);
		*ret_first = first;
		*ret_count = count;
		return 1;
	}
	return 0;
}

void image_demand_position(struct image *im, uint64_t *ret_next,
			   uint64_t *ret_gen)
{
	lock(im);
	*ret_next = im->demand_next;
	*ret_gen = im->demand_gen;
	unlock(im);
}

bool image_complete(struct image *im)
{
	bool done;

	lock(im);
	done = im->stats.manifest_pages_loaded == im->npages;
	/* Complete when every block is cached, zero or written.  A scan:
	 * called at the end of a hydration pass and by status only. */
	for (uint64_t b = 0; done && b < im->hdr.nblocks; b++)
		done = bit_get(im->present, b) || bit_get(im->written, b) ||
		       hash_is_zero(base_hash(im, b));
	unlock(im);
	return done;
}

bool image_cache_full(struct image *im)
{
	bool full;

	lock(im);
	full = im->max_blocks && im->stats.blocks_cached >= im->max_blocks;
	unlock(im);
	return full;
}

const struct manifest_header *image_header(const struct image *im)
{
	return &im->hdr;
}

const char *image_data_path(struct image *im)
{
	const char *p;

	lock(im);
	p = im->data_path;
	unlock(im);
	return p;
}

void image_get_stats(struct image *im, struct image_stats *ret)
{
	lock(im);
	*ret = im->stats;
	unlock(im);
}
