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
 * 100 Mbit/s, 40 ms link full; the fetch engine caps background slots. */
#define HYDRATE_SLOTS	  4
#define HYDRATE_RUN_BYTES (1u << 20)

struct slot {
	struct fetch_req req;
	uint64_t first;
	uint32_t count;
	uint8_t *buf;
	bool busy; /* protected by h->lock */
	bool done; /* protected by h->lock */
};

struct hydrate {
	struct image *im;    /* borrowed */
	struct fetch *fetch; /* borrowed */
	pthread_t thread;
	pthread_mutex_t lock; /* protects slots[].busy/done and stop */
	pthread_cond_t cond;
	bool stop;
	atomic_bool running; /* relaxed: a status flag only */
	struct slot slots[HYDRATE_SLOTS];
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
	s->req.opaque = h;
	s->busy = true;
	s->done = false;
	fetch_submit(h->fetch, &s->req);
}

/* Handle a finished slot on the hydrate thread.  Returns true if its
 * blocks must be fetched again (the cursor is rewound). */
static bool finish(struct hydrate *h, struct slot *s)
{
	int r;

	if (s->req.result < 0) {
		if (s->req.result != -ECANCELED)
			log_warn("hydrate: blocks %" PRIu64 "-%" PRIu64 ": %s",
				 s->first, s->first + s->count - 1,
				 s->req.errmsg);
		return true;
	}
	r = image_store_fetched(h->im, s->first, s->count, s->buf);
	if (r < 0) {
		log_warn_errno(r, "hydrate: storing blocks %" PRIu64 ": %m",
			       s->first);
		return true;
	}
	return r > 0;
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
	uint64_t cursor = 0, started = now_ns();
	uint64_t demand_next, gen, seen_gen = 0;
	bool wrapped = true; /* the first scan starts at 0 */
	unsigned backoff_ms = 0;
	int inflight = 0;

	if (max == 0)
		max = 1;
	log_debug(LOG_CAT_HYDRATE, "hydrate: started");
	for (;;) {
		bool again = false, exhausted = false, stop;

		/* Fill free slots with the next missing runs. */
		for (int i = 0; i < HYDRATE_SLOTS; i++) {
			struct slot *s = &h->slots[i];
			uint64_t first;
			uint32_t count;
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
			r = image_next_missing(h->im, &cursor, max, &first,
					       &count);
			if (r == 0 && !wrapped) {
				cursor = 0;
				wrapped = true;
				r = image_next_missing(h->im, &cursor, max,
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

		/* Wait for one completion (or stop). */
		mutex_lock(&h->lock);
		for (;;) {
			bool any = false;

			for (int i = 0; i < HYDRATE_SLOTS; i++)
				any |= h->slots[i].busy && h->slots[i].done;
			if (any)
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
	if (image_complete(h->im))
		log_info("hydrate: local copy complete after %.1f s",
			 (double)(now_ns() - started) / 1e9);
	else if (image_cache_full(h->im))
		log_info("hydrate: stopped after %.1f s: the cache is at "
			 "--max-cache",
			 (double)(now_ns() - started) / 1e9);
	atomic_store_explicit(&h->running, false, memory_order_relaxed);
	return NULL;
}

int hydrate_start(struct image *im, struct fetch *f, struct hydrate **ret)
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
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
}

bool hydrate_running(struct hydrate *h)
{
	return h && atomic_load_explicit(&h->running, memory_order_relaxed);
}
