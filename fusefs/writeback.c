/* SPDX-License-Identifier: MIT */
/* Write-back.  See writeback.h.
 *
 * Threading: the write-back thread runs every sync, so syncs never
 * overlap; writeback_sync() posts a request under w->lock and waits for
 * its answer.  The snapshot (an LMDB read transaction) lives on the
 * write-back thread for the length of one sync.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "hash.h"
#include "log.h"
#include "thread.h"
#include "manifest.h"
#include "mutex.h"
#include "util.h"

#include "cache.h"
#include "image.h"
#include "lease.h"
#include "pending.h"
#include "remote.h"
#include "upload.h"
#include "writeback.h"

/* Blocks read from the snapshot and uploaded at a time. */
#define WB_CHUNK 256

/* A dirty block in a sync's snapshot (the record pending.h keeps). */
#define wb_item pending_item

struct writeback {
	char *name;
	char *holder;
	uint64_t renew_ns;
	uint64_t interval_ns;
	struct image *im;    /* borrowed */
	struct cache *cache; /* borrowed */
	struct fetch *fetch; /* borrowed */
	struct cache *meta;  /* borrowed, may be NULL */
	pthread_t thread;
	uint8_t *committed;  /* manifest hashes of `version`; thread only */
	bool have_committed; /* committed is filled; thread only */

	pthread_mutex_t lock; /* protects everything below */
	pthread_cond_t cond;  /* a request, an answer, or stop */
	bool stop;
	char lease_id[VMF_LEASE_ID_HEX_LEN + 1]; /* "" without a lease */
	uint64_t version;			 /* what the server holds */
	unsigned requests;			 /* syncs asked for */
	unsigned answered;			 /* syncs done */
	int last_r;
	uint64_t last_blocks;
	char last_why[256];
};

struct collect {
	struct wb_item *items;
	size_t n, cap;
};

static int collect_one(void *opaque, uint64_t blkno, uint64_t gen,
		       const uint8_t hash[VMF_HASH_LEN])
{
	struct collect *c = opaque;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct wb_item *n = realloc(c->items, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->items = n;
		c->cap = cap;
	}
	c->items[c->n].blkno = blkno;
	c->items[c->n].gen = gen;
	memcpy(c->items[c->n].hash, hash, VMF_HASH_LEN);
	c->n++;
	return 0;
}

/* Upload the snapshot's dirty blocks, WB_CHUNK at a time. */
static int upload_dirty(struct writeback *w, struct cache_snap *snap,
			const struct collect *d, struct upload_stats *st,
			char *why)
{
	const struct manifest_header *h = image_header(w->im);
	_cleanup_free_ uint8_t *bufs = malloc((size_t)WB_CHUNK * h->block_size);
	struct upload_block blocks[WB_CHUNK];
	int r;

	if (!bufs)
		return -ENOMEM;
	for (size_t i = 0; i < d->n; i += WB_CHUNK) {
		size_t n = 0;

		for (size_t k = i; k < d->n && k < i + WB_CHUNK; k++) {
			const struct wb_item *it = &d->items[k];
			uint32_t len = manifest_block_len(h, it->blkno);
			uint8_t *b = bufs + n * (size_t)h->block_size;

			if (hash_is_zero(it->hash))
				continue;
			r = cache_snap_get(snap, it->blkno, it->hash, b, len);
			if (r < 0) {
				snprintf(why, 256,
					 "written block %" PRIu64
					 " unreadable from the cache",
					 it->blkno);
				return r;
			}
			blocks[n].hash = it->hash;
			blocks[n].buf = b;
			blocks[n].len = len;
			n++;
		}
		r = upload_blocks(w->fetch, blocks, n, st, why);
		if (r < 0)
			return r;
	}
	return 0;
}

/* One sync.  Returns 0 (or an error) with *ret_blocks committed. */
/* The commit of items as version (its manifest man) landed: clear the
 * dirty records that did not move since, bind the copy to version (one
 * transaction), forget the pending record, and move the image onto the
 * new version. */
static int record_commit(struct writeback *w, const struct wb_item *items,
			 size_t n, uint64_t version, const uint8_t *man,
			 size_t man_len, char *why)
{
	_cleanup_free_ struct cache_clean *clean =
	    calloc(n + 1, sizeof(*clean));
	_cleanup_free_ bool *cleaned = calloc(n + 1, sizeof(*cleaned));
	char ver[32], data_path[256];
	int r;

	if (!clean || !cleaned)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		clean[i].blkno = items[i].blkno;
		clean[i].gen = items[i].gen;
	}
	snprintf(ver, sizeof(ver), "%" PRIu64, version);
	r = cache_clean_dirty(w->cache, clean, n, cleaned, "version", ver,
			      strlen(ver));
	if (r < 0) {
		/* The server has the version; the marks and the pending
		 * record stay, and the next sync sends the same commit
		 * again (the server answers the version it made). */
		snprintf(why, 256,
			 "committed version %" PRIu64
			 ", but recording it in the cache failed",
			 version);
		return r;
	}
	if (pending_clear(w->cache) < 0)
		log_warn("%s: cannot clear the pending commit record; the "
			 "next mount sends it again (harmless)",
			 w->name);
	/* Before the image moves on, while w->version is the old one. */
	if (image_keep_manifest(w->im, w->version, version, man, man_len) < 0)
		log_warn("%s: cannot keep version %" PRIu64 "'s manifest in "
			 "the cache: the copy cannot start offline on it",
			 w->name, version);
	for (size_t i = 0; i < n; i++)
		if (cleaned[i])
			image_mark_clean(w->im, items[i].blkno, items[i].hash);
	memcpy(w->committed, man + MANIFEST_HEADER_SIZE,
	       man_len - MANIFEST_HEADER_SIZE);
	mutex_lock(&w->lock);
	w->version = version;
	mutex_unlock(&w->lock);
	/* Fetch from the new version from now on; its synced blocks become
	 * plain, evictable blocks of it. */
	remote_data_path(w->name, version, data_path, sizeof(data_path));
	if (image_rebase(w->im, version, data_path) < 0)
		log_warn("%s: out of memory moving onto version %" PRIu64
			 "; synced blocks stay pinned in the cache",
			 w->name, version);
	return 0;
}

/* The manifest of items on top of the last committed version: a new
 * buffer in *ret of *ret_len bytes. */
static int build_manifest(struct writeback *w, const struct wb_item *items,
			  size_t n, uint8_t **ret, size_t *ret_len)
{
	struct manifest_header nh = *image_header(w->im);
	size_t len;
	uint8_t *man;

	nh.version = 0;
	len = (size_t)manifest_encoded_size(&nh);
	man = malloc(len);
	if (!man)
		return -ENOMEM;
	manifest_header_encode(&nh, man);
	memcpy(man + MANIFEST_HEADER_SIZE, w->committed,
	       len - MANIFEST_HEADER_SIZE);
	for (size_t i = 0; i < n; i++)
		memcpy(man + manifest_entry_offset(items[i].blkno),
		       items[i].hash, VMF_HASH_LEN);
	*ret = man;
	*ret_len = len;
	return 0;
}

/* A commit recorded as pending whose outcome is unknown (its answer was
 * lost, or the client died): send it again, under the same id, before
 * anything else.  0 when there was none (or it was dropped), 1 with
 * *ret_blocks when it is now recorded; else the sync fails (the record
 * stays for the next try). */
static int resume_pending(struct writeback *w, uint64_t *ret_blocks, char *why)
{
	struct pending p;
	_cleanup_free_ uint8_t *man = NULL;
	char lease[VMF_LEASE_ID_HEX_LEN + 1];
	uint64_t base, version;
	size_t len;
	int r;

	r = pending_get(w->cache, &p);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		log_warn("%s: a damaged pending commit record: dropped",
			 w->name);
		return pending_clear(w->cache);
	}
	mutex_lock(&w->lock);
	base = w->version;
	memcpy(lease, w->lease_id, sizeof(lease));
	mutex_unlock(&w->lock);
	if (p.base != base) {
		/* Recorded before a commit that did land and was recorded. */
		pending_fini(&p);
		return pending_clear(w->cache);
	}
	r = build_manifest(w, p.items, p.n, &man, &len);
	if (r == 0)
		r = upload_commit(w->fetch, w->name, base, man, len,
				  *lease ? lease : NULL, p.id, &version, why);
	if (r == -ESTALE) {
		/* Refused: it never landed and never will; its blocks are
		 * still dirty and go up with the next commit (or conflict). */
		pending_fini(&p);
		return pending_clear(w->cache);
	}
	if (r == 0) {
		log_info("%s: the commit whose answer was lost is version "
			 "%" PRIu64,
			 w->name, version);
		r = record_commit(w, p.items, p.n, version, man, len, why);
	}
	if (r == 0) {
		*ret_blocks = p.n;
		snprintf(why, 256,
			 "version %" PRIu64 ": %zu blocks changed (a commit "
			 "whose answer had been lost)",
			 version, p.n);
		r = 1;
	}
	pending_fini(&p);
	return r;
}

/* Tests only (tests/faults/037): VMFERRY_TEST_PAUSE_AFTER_COMMIT=SECS
 * opens a window between the server's commit and the copy's record of
 * it, in which a test writes more and kills the client. */
static void test_pause_after_commit(void)
{
	const char *s = getenv("VMFERRY_TEST_PAUSE_AFTER_COMMIT");
	uint64_t secs;

	if (s && parse_u64(s, &secs) == 0 && secs > 0 && secs < 600)
		sleep((unsigned)secs);
}

static int do_sync(struct writeback *w, uint64_t *ret_blocks, char *why)
{
	struct cache_snap *snap = NULL;
	struct collect d = {0};
	struct upload_stats st = {0};
	struct pending p = {0};
	_cleanup_free_ uint8_t *man = NULL;
	uint64_t base, version = 0;
	char lease[VMF_LEASE_ID_HEX_LEN + 1];
	size_t man_len;
	bool resumed;
	int64_t n;
	int r;

	*ret_blocks = 0;
	/* Everything acknowledged so far goes into the snapshot. */
	r = image_flush(w->im);
	if (r < 0) {
		snprintf(why, 256, "the local copy failed");
		return r;
	}
	/* The base of the first commit is the mounted version's manifest,
	 * loaded now rather than at mount (a large one must not delay the
	 * first read). */
	if (!w->have_committed) {
		r = image_copy_manifest(w->im, w->committed);
		if (r < 0) {
			snprintf(why, 256, "cannot load the manifest");
			return r;
		}
		w->have_committed = true;
	}
	r = resume_pending(w, ret_blocks, why);
	if (r < 0)
		return r;
	resumed = r == 1;
	r = cache_snap_begin(w->cache, &snap);
	if (r < 0) {
		snprintf(why, 256, "cache snapshot failed");
		return r;
	}
	n = cache_snap_dirty_walk(snap, collect_one, &d);
	if (n <= 0) {
		r = (int)n;
		if (r < 0)
			snprintf(why, 256, "reading the dirty set failed");
		else if (!resumed)
			snprintf(why, 256, "nothing to sync");
		goto out;
	}
	r = upload_dirty(w, snap, &d, &st, why);
	if (r < 0)
		goto out;

	/* The new manifest: the last committed one with the snapshot's
	 * blocks in it, recorded as pending before it is sent. */
	r = build_manifest(w, d.items, d.n, &man, &man_len);
	if (r < 0)
		goto out;
	mutex_lock(&w->lock);
	base = w->version;
	memcpy(lease, w->lease_id, sizeof(lease));
	mutex_unlock(&w->lock);
	p.base = base;
	p.items = d.items;
	p.n = d.n;
	r = pending_new_id(p.id);
	if (r == 0)
		r = pending_put(w->cache, &p);
	if (r < 0) {
		snprintf(why, 256, "cannot record the commit in the cache");
		goto out;
	}
	r = upload_commit(w->fetch, w->name, base, man, man_len,
			  *lease ? lease : NULL, p.id, &version, why);
	if (r == -ESTALE)
		(void)pending_clear(w->cache); /* refused: it never lands */
	if (r < 0)
		goto out;
	test_pause_after_commit();
	r = record_commit(w, d.items, d.n, version, man, man_len, why);
	if (r < 0)
		goto out;
	*ret_blocks = d.n;
	snprintf(why, 256,
		 "version %" PRIu64 ": %zu blocks changed, %" PRIu64
		 " uploaded (%" PRIu64 " bytes), %" PRIu64
		 " already on the server",
		 version, d.n, st.uploaded, st.bytes, st.present);
	log_info("%s: synced as %s", w->name, why);
out:
	cache_snap_end(snap);
	free(d.items);
	return r;
}

/* A third of what is left of the lease, so that two renewals can fail
 * before it lapses; at least 5 s, at most an hour. */
static uint64_t renew_interval_ns(int64_t left_s)
{
	int64_t s = left_s / 3;

	if (s < 5)
		s = 5;
	if (s > 3600)
		s = 3600;
	return (uint64_t)s * 1000000000ull;
}

/* Renew the lease (write-back thread).  A lost lease is logged: commits
 * will be refused as conflicts and the changes stay in the cache. */
static void renew_lease(struct writeback *w)
{
	char old[VMF_LEASE_ID_HEX_LEN + 1], why[256];
	struct lease l;
	int r;

	mutex_lock(&w->lock);
	memcpy(old, w->lease_id, sizeof(old));
	mutex_unlock(&w->lock);
	/* Without an id (a copy started offline without one) a new lease is
	 * taken: the commit needs one once the server is back. */
	r = lease_acquire(w->fetch, w->name, w->holder, *old ? old : NULL,
			  writeback_version(w), &l, why);
	if (r < 0) {
		log_warn("%s: renewing the lease: %s", w->name, why);
		return;
	}
	if (!l.renewed && *old)
		log_warn("%s: the lease had lapsed; a new one was granted",
			 w->name);
	mutex_lock(&w->lock);
	memcpy(w->lease_id, l.id, sizeof(w->lease_id));
	mutex_unlock(&w->lock);
	w->renew_ns = renew_interval_ns(l.expires - now_wall());
	if (w->meta &&
	    cache_meta_put(w->meta, "lease_id", l.id, strlen(l.id)) < 0)
		log_warn("%s: cannot record the lease id in the cache",
			 w->name);
}

static void *writeback_thread(void *arg)
{
	struct writeback *w = arg;
	uint64_t next = now_ns() + w->interval_ns;
	uint64_t next_renew = now_ns() + w->renew_ns;

	for (;;) {
		bool asked, stop;
		uint64_t blocks;
		char why[256] = "";
		int r;

		mutex_lock(&w->lock);
		for (;;) {
			struct timespec ts;
			uint64_t t;

			asked = w->requests != w->answered;
			stop = w->stop;
			if (asked || stop ||
			    (w->interval_ns && now_ns() >= next) ||
			    (w->renew_ns && now_ns() >= next_renew))
				break;
			t = w->interval_ns ? next - now_ns() : 3600e9;
			if (w->renew_ns && next_renew - now_ns() < t)
				t = next_renew - now_ns();
			clock_gettime(CLOCK_REALTIME, &ts);
			t += (uint64_t)ts.tv_nsec;
			ts.tv_sec += (time_t)(t / 1000000000ull);
			ts.tv_nsec = (long)(t % 1000000000ull);
			pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		}
		mutex_unlock(&w->lock);
		if (stop && !asked)
			break;
		if (w->renew_ns && now_ns() >= next_renew) {
			renew_lease(w);
			next_renew = now_ns() + w->renew_ns;
			if (!asked && (!w->interval_ns || now_ns() < next))
				continue;
		}
		r = do_sync(w, &blocks, why);
		if (r < 0 && !asked)
			log_warn("%s: periodic sync: %s (%s)", w->name, why,
				 strerror(-r));
		next = now_ns() + w->interval_ns;
		mutex_lock(&w->lock);
		if (asked) {
			w->answered = w->requests;
			w->last_r = r;
			w->last_blocks = blocks;
			snprintf(w->last_why, sizeof(w->last_why), "%s", why);
		}
		cond_broadcast(&w->cond);
		mutex_unlock(&w->lock);
	}
	return NULL;
}

int writeback_start(const struct writeback_config *cfg, struct image *im,
		    struct cache *c, struct fetch *f, struct writeback **ret)
{
	struct writeback *w = calloc(1, sizeof(*w));
	const struct manifest_header *h = image_header(im);
	int r;

	if (!w)
		return -ENOMEM;
	w->name = strdup(cfg->name);
	w->holder = strdup(cfg->holder ? cfg->holder : "");
	w->renew_ns = cfg->renew_s * 1000000000ull;
	w->meta = cfg->meta;
	if (cfg->lease_id)
		snprintf(w->lease_id, sizeof(w->lease_id), "%s", cfg->lease_id);
	w->committed = malloc(h->nblocks * VMF_HASH_LEN + 1);
	w->interval_ns = cfg->interval_s * 1000000000ull;
	w->version = cfg->version;
	w->im = im;
	w->cache = c;
	w->fetch = f;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (!w->name || !w->holder || !w->committed) {
		writeback_stop(w);
		return -ENOMEM;
	}
	r = thread_start(&w->thread, writeback_thread, w, "vmf-writeback");
	if (r < 0) {
		writeback_stop(w);
		return r;
	}
	*ret = w;
	return 0;
}

void writeback_stop(struct writeback *w)
{
	if (!w)
		return;
	if (w->thread) {
		mutex_lock(&w->lock);
		w->stop = true;
		cond_broadcast(&w->cond);
		mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w->committed);
	free(w->holder);
	free(w->name);
	free(w);
}

int writeback_sync(struct writeback *w, uint64_t *ret_version,
		   uint64_t *ret_blocks, char *ret_why)
{
	unsigned ticket;
	int r;

	mutex_lock(&w->lock);
	ticket = ++w->requests;
	cond_broadcast(&w->cond);
	while (w->answered < ticket && !w->stop)
		cond_wait(&w->cond, &w->lock);
	r = w->answered >= ticket ? w->last_r : -ECANCELED;
	*ret_version = w->version;
	*ret_blocks = w->last_blocks;
	snprintf(ret_why, 256, "%s",
		 w->answered >= ticket ? w->last_why : "stopping");
	mutex_unlock(&w->lock);
	return r;
}

void writeback_lease_id(struct writeback *w, char *buf)
{
	mutex_lock(&w->lock);
	memcpy(buf, w->lease_id, sizeof(w->lease_id));
	mutex_unlock(&w->lock);
}

uint64_t writeback_version(struct writeback *w)
{
	uint64_t v;

	mutex_lock(&w->lock);
	v = w->version;
	mutex_unlock(&w->lock);
	return v;
}
