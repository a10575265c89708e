/* SPDX-License-Identifier: MIT */
/* The image's writer thread and its queue, and asynchronous read-ahead.
 *
 * Verified blocks (fetched on demand, by hydration or read-ahead) and the
 * guest's writes are queued as jobs; the writer stores everything queued
 * in one LMDB transaction, so readers never wait for a commit's fsync.
 * Readers copy the newest queued copy of a block meanwhile.  Threading
 * and lock order: see image.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "hash.h"
#include "log.h"
#include "util.h"
#include "thread.h"

#include "cache.h"
#include "fetch.h"
#include "image_int.h"

void image_release_marks(struct image *im, uint8_t *map, uint64_t first,
			 uint64_t count)
{
	lock(im);
	for (uint64_t i = 0; i < count; i++)
		bit_clear(map, first + i);
	cond_broadcast(&im->cond);
	unlock(im);
}

/* Give up blocks claimed busy without storing them; wakes waiters. */
void image_release_busy(struct image *im, uint64_t first, uint64_t count)
{
	image_release_marks(im, im->busy, first, count);
}

/* image_queue_store(), for bytes fetched from `from` (NULL: the blocks
 * were claimed busy for the whole fetch, so neither check below can
 * fire).  Adds to *ret_dropped the blocks left out because the mount
 * moved to another version meanwhile. */
static int queue_store(struct image *im, uint64_t first, uint32_t count,
		       uint8_t *buf, bool *ok, const char *from,
		       uint32_t *ret_dropped)
{
	struct store_job *j = calloc(1, sizeof(*j));

	if (!j) {
		free(buf);
		free(ok);
		image_release_busy(im, first, count);
		return -ENOMEM;
	}
	j->first = first;
	j->count = count;
	j->buf = buf;
	j->ok = ok;
	j->bytes = (size_t)count * im->hdr.block_size;
	lock(im);
	while (im->jobs_bytes > IMAGE_MAX_QUEUED && !im->writer_stop)
		cond_wait(&im->cond, &im->lock);
	for (uint32_t i = 0; i < count; i++) {
		/* Hydration fetches without claiming its blocks, so the
		 * guest may have written one meanwhile: its fetched bytes
		 * are stale, and queued after the write they would shadow
		 * it (readers copy the newest queued job).  Or a commit
		 * moved the mount to its next version (image_rebase()),
		 * and a block verified against the old hashes may have
		 * been written and synced since. */
		if (!ok[i])
			continue;
		if (from && from != im->data_path) {
			ok[i] = false;
			(*ret_dropped)++;
		} else if (bit_get(im->written, first + i)) {
			ok[i] = false;
		}
	}
	for (uint32_t i = 0; i < count; i++) {
		bit_set(im->busy, first + i);
		bit_clear(im->bg, first + i);
	}
	*im->jobs_tail = j;
	im->jobs_tail = &j->next;
	im->jobs_bytes += j->bytes;
	cond_signal(&im->writer_cond);
	cond_broadcast(&im->cond); /* readers waiting for hydration */
	unlock(im);
	return 0;
}

/* Queue a verified run for the writer; takes ownership of buf and ok.
 * Marks the run's blocks busy (a demand run already is) until stored.
 * Waits while too much is queued.  A block written since it was
 * verified is left out. */
int image_queue_store(struct image *im, uint64_t first, uint32_t count,
		      uint8_t *buf, bool *ok)
{
	return queue_store(im, first, count, buf, ok, NULL, NULL);
}

/* --max-cache, under im->lock: make room for the puts that add a block
 * by taking that many victims off the LRU (into *ret_victims, a new
 * array); fetched blocks that still do not fit are left out of puts
 * (they are fetched again when read).  Written blocks always go in:
 * queue_dirty() let them in only while they fit.  Returns the new count
 * of puts. */
static size_t plan_room(struct image *im, struct cache_put *puts, size_t n,
			uint64_t **ret_victims, size_t *ret_nvictims)
{
	uint64_t adds = 0, frees = 0, need;
	size_t k, got;

	*ret_victims = NULL;
	*ret_nvictims = 0;
	if (!im->max_blocks)
		return n;
	for (size_t i = 0; i < n; i++) {
		bool was = bit_get(im->present, puts[i].blkno);

		adds += puts[i].len && !was;
		frees += !puts[i].len && was;
	}
	if (im->stats.blocks_cached + adds <= im->max_blocks + frees)
		return n;
	need = im->stats.blocks_cached + adds - frees - im->max_blocks;
	*ret_victims = calloc(need, sizeof(**ret_victims));
	got = *ret_victims ? image_lru_victims(im, need, *ret_victims) : 0;
	*ret_nvictims = got;
	/* Short of victims: leave out fetched blocks, newest last. */
	for (k = n; got < need && k > 0; k--) {
		struct cache_put *p = &puts[k - 1];

		if (p->dirty || !p->len || bit_get(im->present, p->blkno))
			continue;
		p->len = SIZE_MAX; /* dropped */
		got++;
	}
	for (size_t i = k = 0; i < n; i++)
		if (puts[i].len != SIZE_MAX)
			puts[k++] = puts[i];
	return k;
}

/* Store a batch of jobs in one transaction; then publish and free them.
 * On a full file system the batch's dirty jobs go back to the head of
 * the queue (unless final: the writer is stopping) and true is
 * returned; fetched blocks are dropped (they are fetched again). */
static bool store_jobs(struct image *im, struct store_job *jobs, bool final)
{
	struct store_job *keep = NULL, **keep_tail = &keep;
	bool full;
	_cleanup_free_ struct cache_put *puts = NULL;
	_cleanup_free_ uint64_t *victims = NULL;
	size_t n = 0, cap = 0, bytes = 0, nvictims = 0;
	uint64_t seq = 0, t0;
	bool any_dirty = false;
	int r;

	for (struct store_job *j = jobs; j; j = j->next)
		cap += j->count;
	puts = calloc(cap ? cap : 1, sizeof(*puts));
	/* Under the lock: a fetched block the guest has written since is
	 * not stored (its fetched contents are stale); dirty hashes are
	 * read here too.  Pointers into the manifest stay valid. */
	lock(im);
	for (struct store_job *j = jobs; puts && j; j = j->next) {
		if (j->dirty) {
			puts[n].blkno = j->first;
			puts[n].hash = j->hash;
			puts[n].buf = j->buf;
			puts[n].len =
			    hash_is_zero(j->hash)
				? 0
				: manifest_block_len(&im->hdr, j->first);
			puts[n].dirty = true;
			puts[n].gen = j->gen;
			n++;
			any_dirty = true;
			seq = j->seq > seq ? j->seq : seq;
			continue;
		}
		for (uint32_t i = 0; i < j->count; i++) {
			uint64_t b = j->first + i;

			if (!j->ok[i] || bit_get(im->written, b))
				continue;
			puts[n].blkno = b;
			puts[n].hash = base_hash(im, b);
			puts[n].buf = j->buf + (size_t)i * im->hdr.block_size;
			puts[n].len = manifest_block_len(&im->hdr, b);
			n++;
		}
	}
	if (puts)
		n = plan_room(im, puts, n, &victims, &nvictims);
	unlock(im);
	/* Victims go first: evicted blocks are clean, so losing the puts
	 * after a crash here only costs fetching them again. */
	r = nvictims ? cache_del_batch(im->cache, victims, nvictims) : 0;
	if (r < 0) {
		log_warn_errno(r, "%s: evicting %zu blocks: %m", im->name,
			       nvictims);
		lock(im);
		for (size_t i = 0; i < nvictims; i++)
			image_lru_touch(im, victims[i]);
		unlock(im);
		nvictims = 0;
	}
	t0 = now_ns();
	r = !puts ? -ENOMEM : n ? cache_put_batch(im->cache, puts, n) : 0;
	log_debug(LOG_CAT_STORE, "%s: stored %zu blocks in %" PRIu64 " ms",
		  im->name, n, (now_ns() - t0) / 1000000);
	full = r == -ENOSPC && any_dirty && !final;
	if (full && !atomic_exchange(&im->cache_warned, true))
		log_warn("%s: the cache's file system is full: writes and "
			 "fsync return ENOSPC until there is room; nothing "
			 "written is lost",
			 im->name);
	else if (full)
		log_debug(LOG_CAT_CACHE, "%s: file system still full",
			  im->name);
	else if (r < 0 && any_dirty)
		log_error_errno(r,
				"%s: storing written blocks failed (%m): the "
				"local copy is failed, writes and fsync now "
				"return EIO",
				im->name);
	else if (r < 0 && !atomic_exchange(&im->cache_warned, true))
		log_warn_errno(r,
			       "%s: cannot cache fetched blocks (%m); "
			       "reads go on from the server",
			       im->name);
	lock(im);
	for (size_t i = 0; i < nvictims; i++) {
		if (bit_get(im->present, victims[i])) {
			bit_clear(im->present, victims[i]);
			im->stats.blocks_cached--;
		}
		im->stats.evicted_blocks++;
	}
	for (size_t i = 0; r == 0 && i < n; i++) {
		bool was = bit_get(im->present, puts[i].blkno);

		if (puts[i].len && !was) {
			bit_set(im->present, puts[i].blkno);
			im->stats.blocks_cached++;
		} else if (!puts[i].len && was) {
			bit_clear(im->present, puts[i].blkno);
			im->stats.blocks_cached--;
		}
		if (puts[i].len && !bit_get(im->written, puts[i].blkno))
			image_lru_touch(im, puts[i].blkno);
	}
	if (any_dirty && r < 0 && !full)
		im->write_failed = true;
	else if (any_dirty && r == 0)
		im->dirty_stored = seq;
	im->store_full = full;
	im->store_attempts++;
	for (struct store_job **p = &jobs; *p;) {
		struct store_job *j = *p;

		if (full && j->dirty) {
			/* Kept, in order, with its bytes still queued. */
			*p = j->next;
			j->next = NULL;
			*keep_tail = j;
			keep_tail = &j->next;
			continue;
		}
		for (uint32_t i = 0; !j->dirty && i < j->count; i++)
			bit_clear(im->busy, j->first + i);
		bytes += j->bytes;
		p = &j->next;
	}
	if (keep) {
		/* Older than anything queued since: at the head. */
		*keep_tail = im->jobs;
		if (!im->jobs)
			im->jobs_tail = keep_tail;
		im->jobs = keep;
	}
	im->jobs_bytes -= bytes;
	im->storing = NULL;
	cond_broadcast(&im->cond);
	unlock(im);
	while (jobs) {
		struct store_job *next = jobs->next;

		free(jobs->buf);
		free(jobs->ok);
		free(jobs);
		jobs = next;
	}
	return full;
}

/* After a full file system: wait a second (or for new jobs, or stop)
 * before trying again. */
static void wait_for_space(struct image *im)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	lock(im);
	if (!im->writer_stop)
		(void)pthread_cond_timedwait(&im->writer_cond, &im->lock,
					     &ts); /* a timeout is the point */
	unlock(im);
}

/* Hash prefetched runs taken off im->unverified (counted in
 * im->verifying by the caller), then, under the lock, leave out blocks
 * the guest wrote meanwhile (queued after the write they would shadow
 * it), append the runs to the writer's queue (or, from the writer, to
 * the batch it is storing) and wake readers: they copy verified bytes
 * from there without waiting for the writer's commit.  Takes the
 * lock. */
static void verify_prefetched(struct image *im, struct store_job *unv,
			      bool to_batch)
{
	struct store_job **tail;

	for (struct store_job *j = unv; j; j = j->next)
		image_verify_run(im, j->first, j->count, j->buf, j->ok);
	lock(im);
	for (struct store_job *j = unv; j; j = j->next)
		for (uint32_t i = 0; i < j->count; i++)
			if (bit_get(im->written, j->first + i))
				j->ok[i] = false;
	if (to_batch) {
		for (tail = &im->storing; *tail; tail = &(*tail)->next)
			;
		*tail = unv;
	} else {
		*im->jobs_tail = unv;
		while (*im->jobs_tail)
			im->jobs_tail = &(*im->jobs_tail)->next;
	}
	im->verifying--;
	cond_broadcast(&im->cond);
	cond_signal(&im->writer_cond);
	unlock(im);
}

bool image_verify_pending(struct image *im, uint64_t b)
{
	struct store_job **p, *j;

	for (p = &im->unverified; *p; p = &(*p)->next)
		if (b >= (*p)->first && b < (*p)->first + (*p)->count)
			break;
	if (!*p)
		return false;
	j = *p;
	*p = j->next;
	j->next = NULL;
	im->verifying++;
	unlock(im);
	verify_prefetched(im, j, false);
	lock(im);
	return true;
}

static void *writer_thread(void *arg)
{
	struct image *im = arg;

	for (;;) {
		struct store_job *jobs, *unv;
		bool stop;

		lock(im);
		/* Stopping waits for runs a reader is hashing. */
		while (!im->jobs && !im->unverified &&
		       !(im->writer_stop && !im->verifying))
			cond_wait(&im->writer_cond, &im->lock);
		jobs = im->jobs;
		unv = im->unverified;
		im->storing = jobs;
		stop = im->writer_stop;
		im->jobs = NULL;
		im->jobs_tail = &im->jobs;
		im->unverified = NULL;
		if (unv)
			im->verifying++;
		unlock(im);
		/* Prefetched runs are hashed here (or by a reader that needs
		 * one first), off the fetch thread; only then may readers
		 * copy them from the batch. */
		if (unv) {
			verify_prefetched(im, unv, true);
			lock(im);
			jobs = im->storing;
			unlock(im);
		}
		if (jobs && store_jobs(im, jobs, stop))
			wait_for_space(im);
		else if (!jobs && stop)
			break;
	}
	return NULL;
}

int image_start_writer(struct image *im)
{
	int r;

	r = thread_start(&im->writer, writer_thread, im, "vmf-writer");
	if (r == 0)
		im->writer_started = true;
	return r;
}

int image_store_fetched_take(struct image *im, uint64_t first, uint32_t count,
			     uint8_t *buf)
{
	bool *ok = calloc(count, sizeof(bool));
	const char *from;
	uint32_t bad;
	int r;

	if (!ok) {
		free(buf);
		return -ENOMEM;
	}
	/* The version the hashes below are of: checked again when queued. */
	from = image_data_path(im);
	bad = image_verify_run(im, first, count, buf, ok);
	r = queue_store(im, first, count, buf, ok, from, &bad);
	return r < 0 ? r : (int)bad;
}

int image_store_fetched(struct image *im, uint64_t first, uint32_t count,
			const uint8_t *buf)
{
	size_t len = (size_t)count * im->hdr.block_size;
	uint8_t *copy = malloc(len);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, len);
	return image_store_fetched_take(im, first, count, copy);
}

/* An asynchronous fetch of claimed blocks (read-ahead, boot-profile
 * prefetch); req is the first member so the completion can find the
 * rest. */
struct prefetch {
	struct fetch_req req;
	struct image *im;
	uint64_t first;
	uint32_t count;
	uint8_t *buf;
	image_fetched_fn *done; /* may be NULL */
	void *opaque;
};

/* Fetch thread: hand the bytes to the writer (which verifies them) or,
 * on failure, release the blocks.  Never blocks. */
static void prefetch_done(struct fetch_req *req)
{
	struct prefetch *p = (struct prefetch *)req;
	struct image *im = p->im;
	struct store_job *j = NULL;
	bool *ok = NULL;
	int result = req->result;

	if (result == 0) {
		j = calloc(1, sizeof(*j));
		ok = calloc(p->count, sizeof(bool));
		if (!j || !ok)
			result = -ENOMEM;
	}
	lock(im);
	if (result == 0) {
		j->first = p->first;
		j->count = p->count;
		j->buf = p->buf;
		j->ok = ok;
		j->bytes = (size_t)p->count * im->hdr.block_size;
		j->next = im->unverified;
		im->unverified = j;
		im->jobs_bytes += j->bytes;
		if (req->prio == FETCH_PRIO_DEMAND)
			im->stats.demand_fetched_blocks += p->count;
		cond_signal(&im->writer_cond);
	} else {
		for (uint32_t i = 0; i < p->count; i++)
			bit_clear(im->busy, p->first + i);
		free(p->buf);
		free(j);
		free(ok);
	}
	im->prefetch_inflight--;
	cond_broadcast(&im->cond);
	unlock(im);
	if (p->done)
		p->done(p->opaque, result);
	free(p);
}

/* Fetch [from, from + count), claimed busy and counted in
 * prefetch_inflight by the caller, without waiting. */
static void fetch_claimed(struct image *im, uint64_t from, uint32_t count,
			  enum fetch_prio prio, image_fetched_fn *done,
			  void *opaque)
{
	struct prefetch *p = calloc(1, sizeof(*p));
	uint64_t off, len;

	if (p)
		p->buf = malloc((size_t)count * im->hdr.block_size);
	if (!p || !p->buf) {
		image_release_busy(im, from, count);
		lock(im);
		im->prefetch_inflight--;
		cond_broadcast(&im->cond);
		unlock(im);
		if (p)
			free(p->buf);
		free(p);
		if (done)
			done(opaque, -ENOMEM);
		return;
	}
	p->im = im;
	p->first = from;
	p->count = count;
	p->done = done;
	p->opaque = opaque;
	image_block_range(im, from, p->count, &off, &len);
	p->req.path = image_data_path(im);
	p->req.off = off;
	p->req.len = len;
	p->req.buf = p->buf;
	p->req.buf_len = len;
	p->req.prio = prio;
	/* Its blocks are claimed busy, and a reader of one waits for this
	 * request up to the I/O timeout: it must end by then, queued or
	 * stalled (the reader then fetches the block itself). */
	p->req.deadline_ns = now_ns() + im->io_timeout_ns;
	p->req.done = prefetch_done;
	fetch_submit(im->fetch, &p->req);
}

void image_fetch_claimed(struct image *im, uint64_t first, uint32_t count,
			 enum fetch_prio prio, image_fetched_fn *done,
			 void *opaque)
{
	lock(im);
	im->prefetch_inflight++;
	unlock(im);
	fetch_claimed(im, first, count, prio, done, opaque);
}

/* Start fetching up to want blocks from `from` on without waiting, for a
 * reader.  Best effort: skipped when the writer is behind. */
void image_prefetch(struct image *im, uint64_t from, uint32_t want)
{
	uint64_t end, stop = from + want;

	if (stop > im->hdr.nblocks)
		stop = im->hdr.nblocks;
	lock(im);
	if (im->jobs_bytes > IMAGE_MAX_QUEUED / 2 || im->writer_stop) {
		unlock(im);
		return;
	}
	/* Skip what is cached, zero or taken, then claim a contiguous run. */
	while (from < stop &&
	       im->page_state[from / MANIFEST_PAGE_ENTRIES] == PAGE_LOADED &&
	       !image_is_fetchable(im, from))
		from++;
	for (end = from; end < stop; end++) {
		if (im->page_state[end / MANIFEST_PAGE_ENTRIES] !=
			PAGE_LOADED ||
		    !image_is_fetchable(im, end))
			break;
		bit_set(im->busy, end);
	}
	if (end > from)
		im->prefetch_inflight++;
	unlock(im);
	if (end == from)
		return;
	fetch_claimed(im, from, (uint32_t)(end - from), FETCH_PRIO_DEMAND, NULL,
		      NULL);
}

/* Under im->lock: if block b is verified and waiting for the writer,
 * copy it from the queue (a memcpy; job buffers are freed only after
 * they leave the lists under the lock).  Returns true if copied. */
bool image_copy_queued(struct image *im, uint64_t b, uint8_t *buf, size_t len,
		       uint64_t off)
{
	/* The newest copy wins: the queue is oldest first, and everything
	 * queued is newer than the batch being stored. */
	struct store_job *lists[2] = {im->jobs, im->storing};

	for (int l = 0; l < 2; l++) {
		struct store_job *last = NULL;

		for (struct store_job *j = lists[l]; j; j = j->next)
			if (b >= j->first && b < j->first + j->count &&
			    j->ok[b - j->first])
				last = j;
		if (last) {
			image_copy_overlap(im, b,
					   last->buf +
					       (size_t)(b - last->first) *
						   im->hdr.block_size,
					   buf, len, off);
			return true;
		}
	}
	return false;
}
