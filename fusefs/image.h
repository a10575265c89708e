/* SPDX-License-Identifier: MIT */
/* One image version as a flat byte range over cached and remote blocks.
 *
 * Owns the manifest (loaded in pages, on demand), the bitmap of cached
 * blocks and the set of blocks being fetched on demand.  Every block is
 * checked against the manifest hash before it is stored or returned;
 * zero blocks are synthesised and never requested.
 *
 * Threading: image_read() is called from many FUSE worker threads at
 * once; image_hydrate_*() from the hydrate thread; image_get_stats()
 * from anywhere.  It blocks on the network (fetch_run) and on LMDB, never
 * while holding im->lock.
 */
#ifndef VMFERRY_IMAGE_H
#define VMFERRY_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"

#include "fetch.h"

struct cache;
struct fetch;
struct image;
struct profile;

struct image_config {
	const char *name;      /* image name, copied */
	const char *data_path; /* "/v1/images/NAME/versions/N/data", copied */
	const char *manifest_path;  /* ".../manifest", copied */
	struct manifest_header hdr; /* from the server, validated */
	uint64_t io_timeout_s;	    /* give up on a block after this (EIO) */
	uint32_t readahead_blocks;  /* extra missing blocks per demand miss */
	/* The version the cache held before (0 = none or the same).  As
	 * each manifest page loads, a cached block whose hash differs from
	 * that version's manifest (kept in the cache meta) is dropped, so
	 * only changed blocks are fetched again. */
	uint64_t prev_version;
	/* --max-cache: store at most this many blocks (0: no bound); clean
	 * blocks are evicted least recently used first, written ones never
	 * before a commit holds them. */
	uint64_t max_blocks;
	/* Boot-profile recorder (borrowed, may be NULL): image_read()
	 * notes each block it is asked for, in order. */
	struct profile *profile;
};

/* Create the image over fetch engine f and cache c (both borrowed; they
 * must outlive the image).  Reads which blocks the cache holds.  Returns
 * 0 or -errno. */
int image_new(const struct image_config *cfg, struct fetch *f, struct cache *c,
	      struct image **ret);
void image_free(struct image *im);

/* Load manifest page(s) covering blocks [first, first + count): from the
 * cache's meta if present, else from the server (then stored).  Called at
 * mount for page 0 so a bad manifest fails the mount.  Returns 0,
 * -EBADMSG (manifest does not match), or a fetch error. */
int image_load_manifest(struct image *im, uint64_t first, uint64_t count);

/* Give the image the mounted version's whole manifest, hashes
 * (nblocks * VMF_HASH_LEN bytes, borrowed), already verified by the
 * caller: each page is stored in the cache's meta where it is missing or
 * differs, so no page is ever fetched (a plain server's manifest is
 * checked whole, by its SHA-256).  Call before image_load_manifest().
 * Returns 0 or -errno from the cache. */
int image_seed_manifest(struct image *im, const uint8_t *hashes);

/* The mounted version's manifest hash of block blkno (the zero hash for
 * a zero block) into out, loading its page if needed.  Returns 0, -EINVAL
 * past the end, or a manifest-loading error. */
int image_manifest_hash(struct image *im, uint64_t blkno,
			uint8_t out[VMF_HASH_LEN]);

/* Read up to len bytes at off into buf.  Returns the byte count (short
 * only at the end of the image; 0 past it), or -EIO when a needed block
 * could not be fetched and verified within io_timeout_s. */
ssize_t image_read(struct image *im, void *buf, size_t len, uint64_t off);

/* Write len bytes at off (any size and alignment).  A partial block is
 * read first, so the rest of it survives.  The data is queued for the
 * writer thread and readable at once; it is durable after image_flush().
 * Returns len (short at the end of the image, or when a block after the
 * first fails: the bytes before it were written), -ENOSPC past the
 * end or when --max-cache is full of unsynced blocks for longer than the
 * I/O timeout, or -EIO (the old contents cannot be fetched, or the local
 * copy failed).  Blocks while the writer's queue is full. */
ssize_t image_write(struct image *im, const void *buf, size_t len,
		    uint64_t off);

/* Zero len bytes at off, as image_write() of zeros would (the guest's
 * discard/TRIM, fallocate punch-hole): whole blocks become zero blocks,
 * which are never uploaded and never fetched; the edges of a partial
 * block are kept.  Clipped at the end of the image.  Returns 0 or an
 * error as image_write(). */
int image_zero(struct image *im, uint64_t off, uint64_t len);

/* Wait until every write queued before this call is durable in LMDB.
 * Returns 0, or -EIO if storing written data failed (from then on every
 * write and flush fails: nothing is acknowledged that is not stored). */
int image_flush(struct image *im);

/* Load the dirty set (blocks written and not yet synced) from the cache;
 * call once after image_new().  Returns the number of dirty blocks, or
 * -EBADMSG/-errno. */
int64_t image_load_dirty(struct image *im);

/* For a copy whose unsynced changes were made on an older version: if
 * the mounted version already holds every one of them (a sync whose
 * commit landed but whose clean-up did not, before a crash), clear them
 * and bind the copy to this version.  Returns 1 if adopted, 0 if the
 * versions differ (a real conflict), or -errno. */
int image_adopt(struct image *im);

/* True when nothing written is waiting to be synced.  Any thread. */
bool image_clean(struct image *im);

/* After a commit: block blkno, uploaded with hash h, is part of the
 * server's new version; it stops counting as dirty unless rewritten since
 * (its hash is no longer h). */
void image_mark_clean(struct image *im, uint64_t blkno, const uint8_t *h);

/* Copy the mounted version's manifest hashes (nblocks * VMF_HASH_LEN
 * bytes) into out, loading every page first.  Returns 0 or a fetch
 * error. */
int image_copy_manifest(struct image *im, uint8_t *out);

/* For the hydrate thread: find up to max blocks starting at or after
 * *cursor that are neither cached, zero nor being fetched on demand, and
 * are adjacent.  Sets *ret_first and *ret_count and advances *cursor past
 * them.  Returns 1 if found, 0 if none remain at or after *cursor, or a
 * manifest-loading error. */
int image_next_missing(struct image *im, uint64_t *cursor, uint32_t max,
		       uint64_t *ret_first, uint32_t *ret_count);

/* For hydration's fetch (on the fetch thread; never blocks): the run
 * [*first, *first + *count) is about to go on the wire.  Narrows it to
 * leave out blocks taken meanwhile at either end (a reader's read-ahead
 * claimed them), and marks its blocks still to fetch: read-ahead leaves
 * them out, and a reader waits a little for them rather than fetch them
 * twice.  A request still queued marks nothing (it may wait long:
 * demand first, --max-rate). */
void image_hydrate_started(struct image *im, uint64_t *first, uint32_t *count);

/* For the hydrate thread: a run image_next_missing() returned will not
 * be stored (its fetch failed or was cancelled). */
void image_hydrate_release(struct image *im, uint64_t first, uint32_t count);

/* For a boot-profile prefetch: from list[*idx] on (list: n block
 * indices below nblocks, best first), skip the blocks that need no
 * fetch (cached, zero, written or being fetched), then claim as busy
 * the first one that does and those listed right after it that follow
 * it block by block (b, b+1, ...), up to max.  Demand readers of a
 * claimed block wait for its fetch instead of fetching it again.
 * Advances *idx past what it looked at.  Returns 1 with the run in
 * *ret_first and *ret_count, 0 at the end of the list, or a
 * manifest-loading error.  Pass the run to image_fetch_claimed(). */
int image_claim_listed(struct image *im, const uint64_t *list, size_t n,
		       size_t *idx, uint32_t max, uint64_t *ret_first,
		       uint32_t *ret_count);

/* Completion of image_fetch_claimed(): on the fetch thread, after the
 * bytes went to the writer (result 0; verified and stored there) or
 * the blocks were released (result < 0).  Must not block. */
typedef void image_fetched_fn(void *opaque, int result);

/* Fetch the claimed blocks [first, first + count) without waiting, at
 * priority prio; done(opaque, result) once it is over (always called,
 * also when this fails early). */
void image_fetch_claimed(struct image *im, uint64_t first, uint32_t count,
			 enum fetch_prio prio, image_fetched_fn *done,
			 void *opaque);

/* Verify blocks [first, first + count) held in buf (as fetched: count
 * blocks back to back, the last possibly short) against the manifest and
 * store the good ones in the cache.  Returns the number of blocks that
 * failed verification (not stored), or -errno from the cache. */
int image_store_fetched(struct image *im, uint64_t first, uint32_t count,
			const uint8_t *buf);

/* The same, taking ownership of buf (a malloc'd buffer of count
 * blocks), which saves a copy: hydration hands its request's buffer on
 * and takes a new one. */
int image_store_fetched_take(struct image *im, uint64_t first, uint32_t count,
			     uint8_t *buf);

/* Byte range [*ret_off, *ret_off + *ret_len) of blocks [first, first +
 * count) in the flat image. */
void image_block_range(const struct image *im, uint64_t first, uint32_t count,
		       uint64_t *ret_off, uint64_t *ret_len);

/* Where the latest demand miss ended (*ret_next) and a counter that moves
 * with every miss (*ret_gen).  Hydration restarts its scan there, so it
 * runs just ahead of a reader instead of far behind it. */
void image_demand_position(struct image *im, uint64_t *ret_next,
			   uint64_t *ret_gen);

/* True when every non-zero block is cached. */
bool image_complete(struct image *im);

/* True when --max-cache is reached: hydration stops there. */
bool image_cache_full(struct image *im);

/* Keep the whole manifest man (len bytes, header included; its version
 * field is ignored) of the just committed version in the cache, header
 * and pages, as a mount of it would have, and drop old_version's pages
 * (0: none): the copy can then start offline, and remount, on the
 * version it is bound to.  Blocks on LMDB commits; any thread without
 * locks held.  0, -EINVAL (man does not parse) or a cache error. */
int image_keep_manifest(struct image *im, uint64_t old_version,
			uint64_t version, const uint8_t *man, size_t len);

/* The commit of this mount's changes made them version `version`, whose
 * data is at data_path (copied): fetch from there from now on, and treat
 * the synced blocks as that version's, so that they can be evicted and
 * fetched again.  Call after image_mark_clean() for the commit's blocks.
 * Any thread; 0 or -ENOMEM. */
int image_rebase(struct image *im, uint64_t version, const char *data_path);

const struct manifest_header *image_header(const struct image *im);
/* Where blocks are fetched from now (the string lives as long as im). */
const char *image_data_path(struct image *im);

struct image_stats {
	uint64_t blocks_total;
	uint64_t blocks_cached; /* non-zero blocks held in the cache */
	uint64_t blocks_zero;	/* zero blocks among the loaded manifest */
	uint64_t blocks_data;	/* non-zero blocks among the loaded manifest */
	uint64_t manifest_pages_loaded, manifest_pages;
	uint64_t read_bytes; /* bytes returned by image_read */
	uint64_t demand_fetched_blocks;
	uint64_t verify_failures;
	uint64_t blocks_dirty;	 /* written and not yet synced */
	uint64_t blocks_reused;	 /* cached under the previous version,
				 * unchanged in this one */
	uint64_t written_bytes;	 /* bytes written through image_write */
	uint64_t zeroed_bytes;	 /* bytes zeroed through image_zero */
	uint64_t evicted_blocks; /* --max-cache evictions */
};
void image_get_stats(struct image *im, struct image_stats *ret);

#endif
