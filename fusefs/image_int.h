/* SPDX-License-Identifier: MIT */
/* Internal to the image module (image.c: state, manifest pages, read
 * path; image_store.c: the writer thread's queue and read-ahead;
 * image_write.c: the write path and the dirty set).  Nothing outside
 * those three files includes this; the API is image.h.
 *
 * The lock order and threading contract are in image.c's comment.
 */
#ifndef VMFERRY_IMAGE_INT_H
#define VMFERRY_IMAGE_INT_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "manifest.h"
#include "mutex.h"

#include "image.h"

struct cache;
struct fetch;

/* Manifest entries per page: 8192 * 32 B = 256 KiB, which covers 512 MiB
 * of image at 64 KiB blocks.  The first read needs one page, not the whole
 * manifest. */
#define MANIFEST_PAGE_ENTRIES 8192u
/* Longest single range request, in bytes. */
#define IMAGE_MAX_RUN_BYTES (4u << 20)
/* How long a reader waits for hydration's fetch of a block it needs
 * before fetching the block itself. */
#define IMAGE_BG_WAIT_NS (2000000000ull)
/* Verified bytes waiting for the writer before producers wait. */
#define IMAGE_MAX_QUEUED (16u << 20)

/* Verified blocks waiting to be stored. */
struct store_job {
	struct store_job *next;
	uint64_t first;
	uint32_t count;
	uint8_t *buf; /* count blocks back to back, owned */
	bool *ok;     /* which verified, owned */
	size_t bytes;
	/* A block the guest wrote (count 1): stored with its dirty record.
	 * buf holds the whole block (zeros for a zero block). */
	bool dirty;
	uint64_t gen;		    /* write generation */
	uint64_t seq;		    /* position among dirty jobs, for fsync */
	uint8_t hash[VMF_HASH_LEN]; /* of the new contents; zero if zero */
};

enum page_state {
	PAGE_ABSENT,
	PAGE_LOADING,
	PAGE_LOADED,
};

struct image {
	/* Set before threads start, read-only after. */
	char *name;
	char *manifest_path;
	struct manifest_header hdr;
	uint64_t npages;
	uint64_t io_timeout_ns;
	uint32_t readahead_blocks;
	uint64_t prev_version;
	atomic_bool cache_warned; /* warned once that puts fail */
	struct fetch *fetch;	  /* borrowed */
	struct cache *cache;	  /* borrowed */
	struct profile *profile;  /* borrowed, may be NULL (own lock) */

	/* --max-cache: at most max_blocks blocks stored (0: no bound). */
	uint64_t max_blocks;

	pthread_mutex_t lock; /* protects everything below */
	/* Where blocks are fetched from: the mounted version's data, then
	 * each version this mount commits (image_rebase()).  Every path
	 * stays allocated until image_free(): requests in flight hold the
	 * old pointer. */
	char *data_path;
	char **old_paths;
	size_t nold_paths;
	uint64_t written_count; /* blocks with the written bit */
	/* The LRU of evictable blocks (present, not written), with
	 * --max-cache only: block indices, least recent at lru_head;
	 * LRU_END ends the list, lru_prev[b] == LRU_OUT when b is not on
	 * it. */
	uint32_t *lru_prev, *lru_next;
	uint32_t lru_head, lru_tail;
	uint64_t lru_len;
	pthread_cond_t cond; /* a page loaded or a busy block finished */
	uint8_t **pages;     /* npages; NULL until loaded */
	uint8_t *page_state; /* enum page_state per page */
	uint8_t *present;    /* bitmap: block is in the cache */
	uint8_t *busy;	     /* bitmap: a demand reader is fetching it */
	/* bitmap: hydration's request for it is on the wire
	 * (image_hydrate_started() until image_store_fetched() or
	 * image_hydrate_release()): read-ahead leaves it out and a reader
	 * waits a little for it, so a sequential reader and hydration do
	 * not fetch it twice. */
	uint8_t *bg;
	uint8_t *dirty;		/* bitmap: written and not yet synced */
	uint8_t *written;	/* bitmap: written this session or unsynced: its
			  * hash is in dirty_hashes, and it is never fetched */
	uint8_t *wlock;		/* bitmap: a write is updating it */
	uint8_t **dirty_hashes; /* per manifest page, NULL until a write */
	uint64_t next_gen;	/* last write generation handed out */
	uint64_t dirty_queued;	/* dirty jobs queued so far (seq) */
	uint64_t dirty_stored;	/* highest seq durably stored */
	bool write_failed;	/* a dirty store failed: EIO from now on */
	/* The last dirty store found the file system full: its dirty jobs
	 * are queued again (readers still see them) and retried; until
	 * one is stored, writes and fsync get ENOSPC. */
	bool store_full;
	uint64_t store_attempts; /* batches the writer has tried to store */
	struct image_stats stats;
	uint64_t seq_next;	      /* block after the latest read */
	uint32_t ra_window;	      /* read-ahead now, in blocks */
	uint64_t demand_next;	      /* block after the latest demand miss */
	uint64_t demand_gen;	      /* moves with every demand miss */
	struct store_job *jobs;	      /* queue for the writer, oldest first */
	struct store_job *storing;    /* batch the writer is storing */
	struct store_job *unverified; /* prefetched, for the writer to hash */
	unsigned prefetch_inflight;   /* prefetch requests not completed */
	unsigned verifying; /* prefetched runs being hashed off the list */
	struct store_job **jobs_tail;
	size_t jobs_bytes;
	bool writer_stop;
	pthread_cond_t writer_cond; /* jobs queued or stop */
	pthread_t writer;
	bool writer_started; /* set before threads start */
};

static inline void lock(struct image *im)
{
	mutex_lock(&im->lock);
}

static inline void unlock(struct image *im)
{
	mutex_unlock(&im->lock);
}

static inline bool bit_get(const uint8_t *map, uint64_t i)
{
	return map[i / 8] & (1u << (i % 8));
}

static inline void bit_set(uint8_t *map, uint64_t i)
{
	map[i / 8] |= (uint8_t)(1u << (i % 8));
}

static inline void bit_clear(uint8_t *map, uint64_t i)
{
	map[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

static inline uint64_t page_entries(const struct image *im, uint64_t page)
{
	uint64_t first = page * MANIFEST_PAGE_ENTRIES;
	uint64_t left = im->hdr.nblocks - first;

	return left < MANIFEST_PAGE_ENTRIES ? left : MANIFEST_PAGE_ENTRIES;
}

/* The mounted version's hash of block blkno; its page must be loaded
 * (pages never unload). */
static inline const uint8_t *base_hash(struct image *im, uint64_t blkno)
{
	const uint8_t *page = im->pages[blkno / MANIFEST_PAGE_ENTRIES];

	assert(page);
	return page + (blkno % MANIFEST_PAGE_ENTRIES) * VMF_HASH_LEN;
}

/* Shared between the image module's files; all take or assume im->lock
 * as their comments in the .c files say. */
const uint8_t *image_cur_hash(struct image *im, uint64_t b);
int image_set_dirty(struct image *im, uint64_t b, const uint8_t *h);
uint32_t image_verify_run(struct image *im, uint64_t first, uint32_t count,
			  const uint8_t *buf, bool *ok);
void image_copy_overlap(struct image *im, uint64_t b, const uint8_t *src,
			uint8_t *buf, size_t len, uint64_t off);
bool image_is_fetchable(struct image *im, uint64_t b);
int image_start_writer(struct image *im);
void image_release_busy(struct image *im, uint64_t first, uint64_t count);
/* Clear [first, first + count) in map (im->busy, im->bg) and wake
 * waiters.  Takes im->lock. */
void image_release_marks(struct image *im, uint8_t *map, uint64_t first,
			 uint64_t count);
int image_queue_store(struct image *im, uint64_t first, uint32_t count,
		      uint8_t *buf, bool *ok);
/* Under im->lock, for a reader waiting on block b: if b is in a
 * prefetched run not hashed yet, hash it now (dropping the lock
 * meanwhile) and queue it, rather than wait for the writer to finish its
 * current commit first.  Returns true if it did; the caller must then
 * look at b again. */
bool image_verify_pending(struct image *im, uint64_t b);
bool image_copy_queued(struct image *im, uint64_t b, uint8_t *buf, size_t len,
		       uint64_t off);
/* image_evict.c, all under im->lock: */
#define LRU_END UINT32_MAX
#define LRU_OUT (UINT32_MAX - 1)
int image_lru_init(struct image *im);
void image_lru_touch(struct image *im, uint64_t b); /* add or move to MRU */
void image_lru_remove(struct image *im, uint64_t b);
/* Room for n more stored blocks: up to n least recently used blocks are
 * taken off the LRU into victims (room for n); returns how many. */
size_t image_lru_victims(struct image *im, uint64_t n, uint64_t *victims);
void image_prefetch(struct image *im, uint64_t from, uint32_t want);

#endif
