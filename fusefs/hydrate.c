/* SPDX-License-Identifier: MIT */
/* Background hydration.  See hydrate.h.
 *
 * Threading: one hydrate thread.  Completions arrive on the fetch thread
 * (on_done), which only moves the request to the done list under h->lock
 * and signals; verification and LMDB writes happen on the hydrate thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "thread.h"
#include "mutex.h"
#include "util.h"

#include "fetch.h"
#include "hydrate.h"
#include "image.h"

/* Requests in flight and blocks per request.  Four 1 MiB ranges keep a
 * 100 Mbit/s, 40 ms link full; the fetch engine caps background slots.
 * While a reader is active (fetch_demand_recent(): bursts of demand in
 * the last 10 s),
 * ranges of HYDRATE_BOOT_RUN_BYTES, so that a demand reply shares the
 * link with short background ones (four 1 MiB ranges hold a 100 Mbit/s
 * link for a third of a second, a 20 Mbit/s one for 1.6 s). */
#define HYDRATE_SLOTS	       4
#define HYDRATE_RUN_BYTES      (1u << 20)
#define HYDRATE_BOOT_RUN_BYTES (256u * 1024)

struct slot {
	struct fetch_req req;
	uint64_t first;
	uint32_t count;
	uint8_t *buf;
	bool busy; /* protected by h->lock */
	bool done; /* protected by h->lock */
};

/* A boot-profile request in flight. */
struct pf_slot {
	struct hydrate *h;
	uint32_t count;
	bool busy; /* protected by h->lock */
};

struct hydrate {
	struct image *im;		 /* borrowed */
	struct fetch *fetch;		 /* borrowed */
	hydrate_profile_fn *get_profile; /* set before the thread starts */
	size_t
	    room; /* bytes of a slot's buffer; set before the thread starts */
	void *opaque;	   /* set before the thread starts */
	uint64_t *profile; /* hydrate thread only; owned */
	size_t profile_n;  /* protected by h->lock */
	pthread_t thread;
	/* Protects slots[].busy/done, pf[].busy, pf_fetched, profile_n and
	 * stop. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	atomic_bool running; /* relaxed: a status flag only */
	/* now_ns() when the thread found the copy complete; 0 before. */
	_Atomic uint64_t complete_ns;
	atomic_bool pf_over; /* relaxed: a status flag only */
	uint64_t pf_fetched;
	struct slot slots[HYDRATE_SLOTS];
	struct pf_slot pf[HYDRATE_SLOTS];
};

static void on_done(struct fetch_req *req)
{
	struct hydrate *h = req->opaque;
	struct slot *s = (struct slot *)req; /* req is the first member */

	mutex_lock(&h->lock);
	s->done = true;
	cond_signal(&h->cond);
	mutex_unlock(&h->lock);
}

/* Fetch thread: a slot's request is on the wire. */
static void on_started(struct fetch_req *req)
{
	struct slot *s = (struct slot *)req;
	struct hydrate *h = req->opaque;
	uint64_t off, len;

	/* Read-ahead may have claimed the run's ends meanwhile. */
	image_hydrate_started(h->im, &s->first, &s->count);
	image_block_range(h->im, s->first, s->count, &off, &len);
	req->off = off;
	req->len = len;
	req->buf_len = len;
}

static void submit(struct hydrate *h, struct slot *s, uint64_t first,
		   uint32_t count)
{
	uint64_t off, len;

	image_block_range(h->im, first, count, &off, &len);
	memset(&s->req, 0, sizeof(s->req));
	s->first = first;
	s->count = count;
	s->req.path = image_data_path(h->im);
	s->req.off = off;
	s->req.len = len;
	s->req.buf = s->buf;
	s->req.buf_len = len;
	s->req.prio = FETCH_PRIO_BACKGROUND;
	s->req.done = on_done;
	s->req.started = on_started;
	s->req.opaque = h;
	s->busy = true;
	s->done = false;
	fetch_submit(h->fetch, &s->req);
}

/* Handle a finished slot on the hydrate thread.  Returns true if its
 * blocks must be fetched again (the cursor is rewound). */
static bool finish(struct hydrate *h, struct slot *s)
{
	uint8_t *fresh;
	int r;

	if (s->req.result < 0) {
		image_hydrate_release(h->im, s->first, s->count);
		if (s->req.result != -ECANCELED)
			log_warn("hydrate: blocks %" PRIu64 "-%" PRIu64 ": %s",
				 s->first, s->first + s->count - 1,
				 s->req.errmsg);
		return true;
	}
	fresh = malloc(h->room);
	if (fresh) {
		r = image_store_fetched_take(h->im, s->first, s->count, s->buf);
		s->buf = fresh;
	} else {
		r = image_store_fetched(h->im, s->first, s->count, s->buf);
	}
	if (r < 0) {
		image_hydrate_release(h->im, s->first, s->count);
		log_warn_errno(r, "hydrate: storing blocks %" PRIu64 ": %m",
			       s->first);
		return true;
	}
	return r > 0;
}

/* Fetch thread: a profile request is over. */
static void pf_done(void *opaque, int result)
{
	struct pf_slot *p = opaque;
	struct hydrate *h = p->h;

	mutex_lock(&h->lock);
	if (result == 0)
		h->pf_fetched += p->count;
	p->busy = false;
	cond_signal(&h->cond);
	mutex_unlock(&h->lock);
}

/* A free profile slot, waiting for one; NULL once stopping. */
static struct pf_slot *pf_slot_get(struct hydrate *h)
{
	struct pf_slot *p = NULL;

	mutex_lock(&h->lock);
	while (!p && !h->stop) {
		for (int i = 0; i < HYDRATE_SLOTS && !p; i++)
			if (!h->pf[i].busy)
				p = &h->pf[i];
		if (!p)
			cond_wait(&h->cond, &h->lock);
	}
	if (p)
		p->busy = true;
	mutex_unlock(&h->lock);
	return p;
}

/* The boot profile's blocks, in its order, HYDRATE_SLOTS requests at a
 * time; returns once every request is over: false if stopping. */
static bool profile_phase(struct hydrate *h, uint32_t max)
{
	uint64_t started = now_ns(), first, fetched;
	uint32_t count;
	size_t idx = 0;
	bool busy, stop;
	int r = 0;

	for (;;) {
		struct pf_slot *p = pf_slot_get(h);

		if (!p)
			break;
		r = image_claim_listed(h->im, h->profile, h->profile_n, &idx,
				       max, &first, &count);
		if (r <= 0) {
			mutex_lock(&h->lock);
			p->busy = false;
			mutex_unlock(&h->lock);
			break;
		}
		log_debug(LOG_CAT_HYDRATE,
			  "hydrate: profile blocks %" PRIu64 "-%" PRIu64, first,
			  first + count - 1);
		p->h = h;
		p->count = count;
		image_fetch_claimed(h->im, first, count, FETCH_PRIO_PREFETCH,
				    pf_done, p);
	}
	if (r < 0)
		log_warn_errno(r, "hydrate: boot profile: %m");
	/* The completions touch h: wait for every one. */
	mutex_lock(&h->lock);
	do {
		busy = false;
		for (int i = 0; i < HYDRATE_SLOTS; i++)
			busy |= h->pf[i].busy;
		if (busy)
			cond_wait(&h->cond, &h->lock);
	} while (busy);
	stop = h->stop;
	fetched = h->pf_fetched;
	mutex_unlock(&h->lock);
	log_info("hydrate: boot profile: %" PRIu64 " of its %zu blocks "
		 "fetched in %.1f s",
		 fetched, h->profile_n, (double)(now_ns() - started) / 1e9);
	return !stop;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static void *hydrate_thread(void *arg)
{
	struct hydrate *h = arg;
	const struct manifest_header *hdr = image_header(h->im);
	uint32_t max = HYDRATE_RUN_BYTES / hdr->block_size;
	uint32_t boot_max = HYDRATE_BOOT_RUN_BYTES / hdr->block_size;
	uint64_t cursor = 0, started = now_ns();
	uint64_t demand_next, gen, seen_gen = 0;
	bool wrapped = true; /* the first scan starts at 0 */
	bool go = true, cancelled = false;
	size_t n = 0;
	unsigned backoff_ms = 0;
	int inflight = 0;

	if (max == 0)
		max = 1;
	if (boot_max == 0)
		boot_max = 1;
	log_debug(LOG_CAT_HYDRATE, "hydrate: started");
	if (h->get_profile && h->get_profile(h->opaque, &h->profile, &n) == 0) {
		mutex_lock(&h->lock);
		h->profile_n = n;
		mutex_unlock(&h->lock);
	}
	if (h->profile_n && !profile_phase(h, max))
		go = false;
	atomic_store_explicit(&h->pf_over, true, memory_order_relaxed);
	while (go) {
		bool again = false, exhausted = false, stop;

		/* Fill free slots with the next missing runs (none once
		 * stopping: only the requests in flight are drained). */
		mutex_lock(&h->lock);
		stop = h->stop;
		mutex_unlock(&h->lock);
		/* Requests still waiting for the pacing budget would keep
		 * the thread (and the unmount) for minutes at a low
		 * --max-rate: they complete now, as cancelled. */
		if (stop && !cancelled) {
			(void)fetch_cancel_queued(h->fetch,
						  h); /* count unused */
			cancelled = true;
		}
		for (int i = 0; i < HYDRATE_SLOTS && !stop; i++) {
			struct slot *s = &h->slots[i];
			uint64_t first;
			uint32_t count, run;
			int r;

			if (s->busy)
				continue;
			/* Follow the reader: scan on from its latest miss;
			 * once past the end, wrap to the start once. */
			image_demand_position(h->im, &demand_next, &gen);
			if (gen != seen_gen) {
				seen_gen = gen;
				cursor = demand_next;
				wrapped = false;
			}
			run = fetch_demand_recent(h->fetch) ? boot_max : max;
			r = image_next_missing(h->im, &cursor, run, &first,
					       &count);
			if (r == 0 && !wrapped) {
				cursor = 0;
				wrapped = true;
				r = image_next_missing(h->im, &cursor, run,
						       &first, &count);
			}
			if (r < 0) {
				again = true;
				break;
			}
			if (r == 0) {
				exhausted = true;
				break;
			}
			submit(h, s, first, count);
			inflight++;
		}
		if (inflight == 0) {
			if (exhausted && !again &&
			    (image_complete(h->im) || image_cache_full(h->im)))
				break;
			/* Something failed or raced with a demand read:
			 * scan again from the start after a pause. */
			cursor = 0;
			wrapped = true;
			backoff_ms = backoff_ms ? backoff_ms * 2 : 100;
			if (backoff_ms > 5000)
				backoff_ms = 5000;
			mutex_lock(&h->lock);
			stop = h->stop;
			mutex_unlock(&h->lock);
			if (stop)
				break;
			sleep_ms(backoff_ms);
			continue;
		}

		/* Wait for one completion, or for stop (once: then the
		 * queued requests are cancelled, above, and complete). */
		mutex_lock(&h->lock);
		for (;;) {
			bool any = false;

			for (int i = 0; i < HYDRATE_SLOTS; i++)
				any |= h->slots[i].busy && h->slots[i].done;
			if (any || (h->stop && !cancelled))
				break;
			cond_wait(&h->cond, &h->lock);
		}
		mutex_unlock(&h->lock);
		for (int i = 0; i < HYDRATE_SLOTS; i++) {
			struct slot *s = &h->slots[i];
			bool done;

			mutex_lock(&h->lock);
			done = s->busy && s->done;
			mutex_unlock(&h->lock);
			if (!done)
				continue;
			if (finish(h, s) && s->first < cursor)
				cursor = s->first;
			else
				backoff_ms = 0;
			s->busy = false;
			inflight--;
		}
		mutex_lock(&h->lock);
		stop = h->stop;
		mutex_unlock(&h->lock);
		if (stop && inflight == 0)
			break;
		if (stop)
			continue; /* drain: the engine cancels on free */
	}
	if (image_complete(h->im)) {
		uint64_t done = now_ns();

		atomic_store_explicit(&h->complete_ns, done,
				      memory_order_relaxed);
		log_info("hydrate: local copy complete after %.1f s",
			 (double)(done - started) / 1e9);
	} else if (image_cache_full(h->im))
		log_info("hydrate: stopped after %.1f s: the cache is at "
			 "--max-cache",
			 (double)(now_ns() - started) / 1e9);
	atomic_store_explicit(&h->running, false, memory_order_relaxed);
	return NULL;
}

int hydrate_start(const struct hydrate_config *cfg, struct image *im,
		  struct fetch *f, struct hydrate **ret)
{
	struct hydrate *h = calloc(1, sizeof(*h));
	uint32_t bs = image_header(im)->block_size;
	size_t room = HYDRATE_RUN_BYTES > bs ? HYDRATE_RUN_BYTES : bs;
	int r;

	if (!h)
		return -ENOMEM;
	h->im = im;
	h->fetch = f;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->get_profile = cfg->get_profile;
	h->opaque = cfg->opaque;
	h->room = room;
	for (int i = 0; i < HYDRATE_SLOTS; i++) {
		h->slots[i].buf = malloc(room);
		if (!h->slots[i].buf) {
			hydrate_stop(h);
			return -ENOMEM;
		}
	}
	atomic_store_explicit(&h->running, true, memory_order_relaxed);
	r = thread_start(&h->thread, hydrate_thread, h, "vmf-hydrate");
	if (r < 0) {
		atomic_store_explicit(&h->running, false, memory_order_relaxed);
		hydrate_stop(h);
		return r;
	}
	*ret = h;
	return 0;
}

void hydrate_stop(struct hydrate *h)
{
	if (!h)
		return;
	if (h->thread) {
		mutex_lock(&h->lock);
		h->stop = true;
		cond_signal(&h->cond);
		mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	for (int i = 0; i < HYDRATE_SLOTS; i++)
		free(h->slots[i].buf);
	free(h->profile);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
}

bool hydrate_running(struct hydrate *h)
{
	return h && atomic_load_explicit(&h->running, memory_order_relaxed);
}

void hydrate_get_stats(struct hydrate *h, struct hydrate_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!h)
		return;
	ret->profile_done =
	    atomic_load_explicit(&h->pf_over, memory_order_relaxed);
	ret->complete_ns =
	    atomic_load_explicit(&h->complete_ns, memory_order_relaxed);
	mutex_lock(&h->lock);
	ret->profile_blocks = h->profile_n;
	ret->profile_fetched = h->pf_fetched;
	mutex_unlock(&h->lock);
}
