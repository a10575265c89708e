/* SPDX-License-Identifier: MIT */
/* Fetch engine: libcurl multi in one thread.
 *
 * Owns the CURLM, a pool of max_inflight transfers (each with an easy
 * handle that is created, reused and freed on the fetch thread only) and
 * three FIFO queues of submitted requests: demand, prefetch and
 * background, started in that order.  Other
 * threads touch only the queues, the background rate and the stop flag,
 * under f->lock, and wake the thread with curl_multi_wakeup(), which
 * libcurl allows from any thread.  Completion callbacks run on the fetch
 * thread with no lock held.
 *
 * Background pacing is a token bucket in bytes kept by the fetch thread:
 * a background range request is charged its length when it starts and
 * refunded what did not arrive when it ends (a whole-body request is
 * charged what arrived); a background request starts only while the
 * bucket is not in debt.  Demand and prefetch requests are never
 * charged; prefetch ones count toward the background cap.  The bucket's
 * rate and the background slots open come from bgshare.c: the user's
 * rate and max_background, or, while demand is recent, one slot and a
 * small share of the link (giving way to a booting guest).
 *
 * Whether a range asks for zstd is the compression policy's choice
 * (zpolicy.h), made as the request starts; each background range that
 * completes is fed back to it as a sample (its length and wall time).
 *
 * Everything about one transfer (curl options, callbacks, the reply
 * checks, CURLcode and HTTP status to -errno) is in fetch_xfer.c; this
 * file sees a slot only through fetch_xfer.h.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

#include "cleanup.h"
#include "log.h"
#include "mutex.h"
#include "util.h"

#include "bgshare.h"
#include "fetch.h"
#include "fetch_xfer.h"

#define FETCH_MAX_INFLIGHT 1024 /* sanity bound on config.max_inflight */
#define FETCH_POLL_MS	   1000 /* longest sleep; curl shortens it */

struct fetch_queue {
	struct fetch_req *head, *tail;
};

struct fetch {
	/* Set before the thread starts, then read-only. */
	struct xfer_config xc; /* fetch_xfer.c's, for every transfer */
	unsigned max_inflight;
	unsigned max_background;
	/* Asked and fed on the fetch thread, read by fetch_get_stats();
	 * has its own lock (a leaf). */
	struct zpolicy zp;
	/* Driven by the fetch thread; other threads only call
	 * curl_multi_wakeup().  Created here and cleaned up by fetch_free()
	 * after the join, so no two threads ever use it at once. */
	CURLM *multi;
	pthread_t thread;

	/* Protects the queues, rate, stop and exited. */
	pthread_mutex_t lock;
	struct fetch_queue demand;     /* protected by f->lock */
	struct fetch_queue prefetch;   /* protected by f->lock */
	struct fetch_queue background; /* protected by f->lock */
	uint64_t rate;		       /* protected by f->lock; 0 = unlimited */
	bool stop;		       /* protected by f->lock */
	bool exited; /* protected by f->lock: queues drained for good */

	/* Fetch thread only. */
	struct xfer *xfers; /* max_inflight slots */
	struct xfer *idle;
	unsigned inflight;
	unsigned bg_inflight;
	struct bgshare share; /* when demand was seen; the link's rate */
	/* The share's "recent" as of the last scheduling pass, for
	 * fetch_demand_recent(); relaxed: a hint. */
	atomic_bool recent;
	/* 0, or no later than the earliest deadline_ns of a queued
	 * request: when to look for ones nobody waits for any more.
	 * Protected by f->lock. */
	uint64_t next_deadline_ns;
	double budget; /* background bytes; negative is debt */
	uint64_t refill_ns;

	/* Counters; relaxed, as nothing else is ordered against them. */
	atomic_uint_fast64_t st_requests;
	atomic_uint_fast64_t st_bytes;
	atomic_uint_fast64_t st_wire;
	atomic_uint_fast64_t st_demand;
	atomic_uint_fast64_t st_errors;
	atomic_int_fast64_t st_last_ok; /* wall time of the last success */
};

static pthread_once_t fetch_global_once = PTHREAD_ONCE_INIT;
static CURLcode fetch_global_rc;

static void fetch_global_init(void)
{
	fetch_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void queue_push(struct fetch_queue *q, struct fetch_req *req)
{
	req->next = NULL;
	if (q->tail)
		q->tail->next = req;
	else
		q->head = req;
	q->tail = req;
}

static struct fetch_req *queue_pop(struct fetch_queue *q)
{
	struct fetch_req *req = q->head;

	if (req) {
		q->head = req->next;
		if (!q->head)
			q->tail = NULL;
		req->next = NULL;
	}
	return req;
}

/* Move q's requests whose deadline has passed to the front of *late;
 * returns the earliest deadline left in q (0 for none).  Under f->lock. */
static uint64_t queue_extract_late(struct fetch_queue *q, uint64_t now,
				   struct fetch_req **late)
{
	struct fetch_req *keep = NULL, **ktail = &keep, *req, *next;
	uint64_t earliest = 0;

	q->tail = NULL;
	for (req = q->head; req; req = next) {
		next = req->next;
		req->next = NULL;
		if (req->deadline_ns && now >= req->deadline_ns) {
			req->next = *late;
			*late = req;
			continue;
		}
		if (req->deadline_ns &&
		    (!earliest || req->deadline_ns < earliest))
			earliest = req->deadline_ns;
		*ktail = req;
		ktail = &req->next;
		q->tail = req;
	}
	q->head = keep;
	return earliest;
}

static uint64_t earlier(uint64_t a, uint64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

/* Take the whole queue. */
static struct fetch_req *queue_take(struct fetch_queue *q)
{
	struct fetch_req *head = q->head;

	q->head = q->tail = NULL;
	return head;
}

/* What background may do now (bgshare.h).  Caller holds f->lock
 * (f->rate). */
static void fetch_bg_limit(const struct fetch *f, uint64_t now,
			   struct bgshare_limit *ret)
{
	bgshare_decide(&f->share, now, f->inflight - f->bg_inflight,
		       f->max_background, f->rate, ret);
}

static void fetch_bucket_refill(struct fetch *f, uint64_t now)
{
	struct bgshare_limit lim;
	double burst;

	fetch_bg_limit(f, now, &lim);
	if (lim.rate == 0) {
		f->budget = 0;
		f->refill_ns = now;
		return;
	}
	f->budget += (double)lim.rate * (double)(now - f->refill_ns) / 1e9;
	f->refill_ns = now;
	/* An idle spell earns at most 100 ms worth of bytes. */
	burst = (double)lim.rate / 10;
	if (f->budget > burst)
		f->budget = burst;
}

/* Prefetch requests: within the background cap, never paced. */
static bool fetch_pf_may_start(const struct fetch *f)
{
	return f->bg_inflight < f->max_background;
}

/* Background slots and bucket (in flight, prefetch counts as
 * background).  Caller holds f->lock. */
static bool fetch_bg_may_start(const struct fetch *f, uint64_t now)
{
	struct bgshare_limit lim;

	fetch_bg_limit(f, now, &lim);
	return f->bg_inflight < lim.slots && (lim.rate == 0 || f->budget >= 0);
}

/* How long the thread may sleep before a queued background request may
 * go: when the quiet time after demand ends, or when the bucket is out
 * of debt; rounded up, so the thread does not wake just short of it.
 * Caller holds f->lock. */
static int fetch_pacing_wait_ms(const struct fetch *f, uint64_t now)
{
	struct bgshare_limit lim;
	double ms = FETCH_POLL_MS;

	if (!f->background.head || f->inflight >= f->max_inflight ||
	    f->bg_inflight >= f->max_background)
		return FETCH_POLL_MS;
	fetch_bg_limit(f, now, &lim);
	if (lim.until_ns > now)
		ms = (double)((lim.until_ns - now) / 1000000 + 1);
	if (f->bg_inflight < lim.slots && lim.rate && f->budget < 0 &&
	    -f->budget * 1000 / (double)lim.rate + 1 < ms)
		ms = -f->budget * 1000 / (double)lim.rate + 1;
	return ms > FETCH_POLL_MS ? FETCH_POLL_MS : (int)ms;
}

/* Hand a finished request back: counters, then done() (no lock held). */
static void fetch_complete(struct fetch *f, struct fetch_req *req, int r)
{
	req->result = r;
	atomic_fetch_add_explicit(&f->st_requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->st_bytes, req->got, memory_order_relaxed);
	if (req->prio == FETCH_PRIO_DEMAND)
		atomic_fetch_add_explicit(&f->st_demand, 1,
					  memory_order_relaxed);
	if (r < 0)
		atomic_fetch_add_explicit(&f->st_errors, 1,
					  memory_order_relaxed);
	else
		atomic_store_explicit(&f->st_last_ok, now_wall(),
				      memory_order_relaxed);
	log_debug(LOG_CAT_FETCH,
		  "fetch %.*s: result %d, HTTP %ld, %zu bytes%s%s",
		  no_query_len(req->path), req->path, r, req->http_status,
		  req->got, r < 0 ? ": " : "", r < 0 ? req->errmsg : "");
	req->done(req);
}

/* Give x back to the pool and complete its request with r. */
static void fetch_finish(struct fetch *f, struct xfer *x, int r)
{
	struct fetch_req *req = xfer_release(x);
	uint64_t now = now_ns();

	atomic_fetch_add_explicit(&f->st_wire, x->wire, memory_order_relaxed);
	/* x->zstd: fetch_xfer.c's, whether the reply came compressed. */
	if (r == 0 && req->len > 0 && req->prio == FETCH_PRIO_BACKGROUND)
		zpolicy_sample(&f->zp, x->zstd_ask, x->zstd, req->got,
			       now_ns() - x->start_ns);

	x->next_idle = f->idle;
	f->idle = x;
	f->inflight--;
	if (x->background)
		f->bg_inflight--;
	else
		bgshare_demand_end(&f->share, now,
				   f->inflight == f->bg_inflight);
	bgshare_delivered(&f->share, now, req->got);
	if (x->paced) {
		/* Settle the charge: refund what was reserved and did not
		 * come, or charge what came unreserved. */
		f->budget += (double)x->reserved - (double)req->got;
	}
	fetch_complete(f, req, r);
}

static void fetch_start_one(struct fetch *f, struct fetch_req *req)
{
	struct xfer *x = f->idle;
	int r;

	/* inflight <= max_inflight == number of slots. */
	assert(x);
	f->idle = x->next_idle;
	if (req->started)
		req->started(req); /* may narrow the range */
	x->background = req->prio != FETCH_PRIO_DEMAND;
	x->paced = req->prio == FETCH_PRIO_BACKGROUND;
	x->reserved = x->paced ? req->len : 0;
	x->zstd_ask = req->len > 0 &&
		      zpolicy_ask(&f->zp, req->prio == FETCH_PRIO_BACKGROUND);
	x->start_ns = now_ns();
	r = xfer_start(x, req, f->multi);
	if (r < 0)
		fetch_finish(f, x, r);
}

/* Start what may start now: demand first, then background within its
 * cap and the pacing budget.  Returns true if the engine is stopping;
 * *ret_wait_ms is how long the thread may sleep. */
static bool fetch_start_requests(struct fetch *f, int *ret_wait_ms)
{
	struct fetch_req *batch = NULL, **tail = &batch, *req;
	struct fetch_req *late = NULL;
	struct bgshare_limit lim;
	uint64_t now = now_ns();
	bool stop;

	mutex_lock(&f->lock);
	stop = f->stop;
	*ret_wait_ms = FETCH_POLL_MS;
	if (!stop) {
		fetch_bucket_refill(f, now);
		/* A queued request whose reader gave up must not wait for
		 * a slot (a stall holding every background one) to end. */
		if (f->next_deadline_ns && now >= f->next_deadline_ns)
			f->next_deadline_ns = earlier(
			    earlier(
				queue_extract_late(&f->demand, now, &late),
				queue_extract_late(&f->prefetch, now, &late)),
			    queue_extract_late(&f->background, now, &late));
		while (f->inflight < f->max_inflight) {
			req = queue_pop(&f->demand);
			if (!req && fetch_pf_may_start(f))
				req = queue_pop(&f->prefetch);
			if (!req && fetch_bg_may_start(f, now))
				req = queue_pop(&f->background);
			if (!req)
				break;
			if (req->deadline_ns && now >= req->deadline_ns) {
				/* Nobody waits for it any more. */
				req->next = late;
				late = req;
				continue;
			}
			f->inflight++;
			if (req->prio == FETCH_PRIO_DEMAND)
				bgshare_demand_start(&f->share, now);
			if (req->prio != FETCH_PRIO_DEMAND)
				f->bg_inflight++;
			if (req->prio == FETCH_PRIO_BACKGROUND)
				f->budget -= (double)req->len;
			*tail = req;
			tail = &req->next;
		}
		*ret_wait_ms = fetch_pacing_wait_ms(f, now);
		fetch_bg_limit(f, now, &lim);
		if (lim.recent !=
		    atomic_load_explicit(&f->recent, memory_order_relaxed))
			log_debug(LOG_CAT_FETCH,
				  "fetch: %s (fastest rate seen %" PRIu64
				  " bytes/s)",
				  lim.recent ? "a reader's bursts: short "
					       "background ranges"
					     : "no burst of demand for 10 s",
				  f->share.peak_bps);
		atomic_store_explicit(&f->recent, lim.recent,
				      memory_order_relaxed);
		if (f->next_deadline_ns) {
			uint64_t ms =
			    f->next_deadline_ns > now
				? (f->next_deadline_ns - now) / 1000000 + 1
				: 1;

			if (ms < (uint64_t)*ret_wait_ms)
				*ret_wait_ms = (int)ms;
		}
	}
	mutex_unlock(&f->lock);

	while (late) {
		req = late;
		late = req->next;
		req->next = NULL;
		snprintf(req->errmsg, sizeof(req->errmsg),
			 "its deadline passed while it was queued");
		fetch_complete(f, req, -ETIMEDOUT);
	}
	while (batch) {
		req = batch;
		batch = req->next;
		req->next = NULL;
		fetch_start_one(f, req);
	}
	return stop;
}

/* Complete finished transfers; returns how many. */
static unsigned fetch_reap(struct fetch *f)
{
	unsigned n = 0;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(f->multi, &left))) {
		CURL *e = msg->easy_handle;
		CURLcode cc = msg->data.result;
		struct xfer *x;
		int r;

		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg dies with curl_multi_remove_handle(): copied above. */
		x = xfer_of(e);
		r = xfer_result(x, cc);
		(void)curl_multi_remove_handle(f->multi, e); /* it is ours */
		fetch_finish(f, x, r);
		n++;
	}
	return n;
}

/* Complete every request of a list (linked by next, not started) with
 * -ECANCELED, saying why; returns how many. */
static unsigned fetch_cancel_list(struct fetch *f, struct fetch_req *list,
				  const char *why)
{
	struct fetch_req *req;
	unsigned n = 0;

	while (list) {
		req = list;
		list = req->next;
		req->next = NULL;
		fetch_errmsg(req, -ECANCELED, "%s", why);
		fetch_complete(f, req, -ECANCELED);
		n++;
	}
	return n;
}

/* On stop: cancel what is in flight, then drain the queues until no
 * done() callback submits anything more. */
static void fetch_cancel_all(struct fetch *f)
{
	struct fetch_req *list;

	for (unsigned i = 0; i < f->max_inflight; i++) {
		struct xfer *x = &f->xfers[i];

		if (!xfer_busy(x))
			continue;
		xfer_cancel(x, f->multi);
		fetch_finish(f, x, -ECANCELED);
	}
	for (;;) {
		mutex_lock(&f->lock);
		list = queue_take(&f->demand);
		if (!list)
			list = queue_take(&f->prefetch);
		if (!list)
			list = queue_take(&f->background);
		if (!list)
			f->exited = true;
		mutex_unlock(&f->lock);
		if (!list)
			break;
		fetch_cancel_list(f, list, "fetch engine stopping");
	}
	for (unsigned i = 0; i < f->max_inflight; i++)
		xfer_fini(&f->xfers[i]);
}

static void *fetch_thread(void *opaque)
{
	struct fetch *f = opaque;
	int wait_ms, running;
	CURLMcode mc;

	for (;;) {
		if (fetch_start_requests(f, &wait_ms))
			break;
		mc = curl_multi_perform(f->multi, &running);
		if (mc != CURLM_OK)
			log_debug(LOG_CAT_FETCH,
				  "fetch: curl_multi_perform: %s",
				  curl_multi_strerror(mc));
		/* A freed slot may start a queued request at once. */
		if (fetch_reap(f) > 0)
			continue;
		mc = curl_multi_poll(f->multi, NULL, 0, wait_ms, NULL);
		if (mc != CURLM_OK) {
			/* Only out of memory: back off rather than spin. */
			log_debug(LOG_CAT_FETCH, "fetch: curl_multi_poll: %s",
				  curl_multi_strerror(mc));
			nanosleep(&(struct timespec){.tv_nsec = 10000000},
				  NULL);
		}
	}
	fetch_cancel_all(f);
	return NULL;
}

/* Everything but the thread (not running, or joined). */
static void fetch_destroy(struct fetch *f)
{
	if (!f)
		return;
	if (f->multi)
		(void)curl_multi_cleanup(f->multi); /* no handles are left */
	free(f->xfers);
	xfer_config_fini(&f->xc);
	zpolicy_fini(&f->zp);
	if (pthread_mutex_destroy(&f->lock) != 0)
		abort();
	free(f);
}

static void fetch_destroyp(struct fetch **f)
{
	fetch_destroy(*f);
}

static int fetch_configure(struct fetch *f, const struct fetch_config *cfg)
{
	f->max_inflight = cfg->max_inflight ?: 8;
	f->max_background = cfg->max_background ?: 4;
	if (!cfg->max_background && f->max_background >= f->max_inflight)
		f->max_background = f->max_inflight - 1;
	if (f->max_inflight < 2 || f->max_inflight > FETCH_MAX_INFLIGHT ||
	    f->max_background >= f->max_inflight)
		return -EINVAL;
	return xfer_config_init(&f->xc, cfg);
}

int fetch_new(const struct fetch_config *cfg, struct fetch **ret)
{
	_cleanup_(fetch_destroyp) struct fetch *f = NULL;
	sigset_t all, old;
	CURLMcode mc = CURLM_OK;
	int r;

	if (pthread_once(&fetch_global_once, fetch_global_init) != 0)
		abort();
	if (fetch_global_rc != CURLE_OK)
		return -EIO;
	if (cfg->compress != ZPOLICY_OFF && cfg->compress != ZPOLICY_ON &&
	    cfg->compress != ZPOLICY_AUTO)
		return -EINVAL;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	if (pthread_mutex_init(&f->lock, NULL) != 0)
		abort();
	zpolicy_init(&f->zp, cfg->compress);
	r = fetch_configure(f, cfg);
	if (r < 0)
		return r;

	f->xfers = calloc(f->max_inflight, sizeof(*f->xfers));
	if (!f->xfers)
		return -ENOMEM;
	for (unsigned i = f->max_inflight; i-- > 0;) {
		xfer_init(&f->xfers[i], &f->xc);
		f->xfers[i].next_idle = f->idle;
		f->idle = &f->xfers[i];
	}
	f->refill_ns = now_ns();
	bgshare_init(&f->share, f->refill_ns);

	f->multi = curl_multi_init();
	if (!f->multi)
		return -ENOMEM;
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(f->multi, CURLMOPT_PIPELINING,
				       (long)CURLPIPE_MULTIPLEX);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
				       (long)f->max_inflight);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(f->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
				       (long)f->max_inflight);
	if (mc != CURLM_OK)
		return -EIO;

	/* The thread inherits a mask with every signal blocked. */
	sigfillset(&all);
	if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
		abort();
	r = -pthread_create(&f->thread, NULL, fetch_thread, f);
	if (r == 0) /* a name for top -H and gdb; cosmetic */
		(void)pthread_setname_np(f->thread, "vmf-fetch");
	if (pthread_sigmask(SIG_SETMASK, &old, NULL) != 0)
		abort();
	if (r < 0)
		return r;
	*ret = steal_ptr(&f);
	return 0;
}

void fetch_free(struct fetch *f)
{
	CURLMcode mc;

	if (!f)
		return;
	mutex_lock(&f->lock);
	f->stop = true;
	mutex_unlock(&f->lock);
	mc = curl_multi_wakeup(f->multi);
	if (mc != CURLM_OK)
		abort(); /* only fails on a bad handle */
	if (pthread_join(f->thread, NULL) != 0)
		abort();
	fetch_destroy(f);
}

void fetch_submit(struct fetch *f, struct fetch_req *req)
{
	bool exited;

	assert(f && req && req->path && req->done);
	assert(req->prio == FETCH_PRIO_DEMAND ||
	       req->prio == FETCH_PRIO_BACKGROUND ||
	       req->prio == FETCH_PRIO_PREFETCH);
	assert(req->len == 0 || (req->buf && req->buf_len >= req->len));
	assert(!req->sink || (req->len == 0 && !req->buf));
	req->result = 0;
	req->http_status = 0;
	req->got = 0;
	req->content_length = -1;
	req->range_total = 0;
	req->errmsg[0] = '\0';
	req->priv = NULL;

	mutex_lock(&f->lock);
	exited = f->exited;
	if (!exited && req->deadline_ns)
		f->next_deadline_ns =
		    earlier(f->next_deadline_ns, req->deadline_ns);
	if (!exited)
		queue_push(req->prio == FETCH_PRIO_DEMAND     ? &f->demand
			   : req->prio == FETCH_PRIO_PREFETCH ? &f->prefetch
							      : &f->background,
			   req);
	mutex_unlock(&f->lock);
	if (exited) {
		/* Only a submit racing with the end of fetch_free() gets
		 * here; done() then runs on this thread. */
		fetch_errmsg(req, -ECANCELED, "fetch engine stopping");
		fetch_complete(f, req, -ECANCELED);
		return;
	}
	if (curl_multi_wakeup(f->multi) != CURLM_OK)
		abort(); /* only fails on a bad handle */
}

/* fetch_run()'s completion, on the caller's stack. */
struct fetch_waiter {
	pthread_mutex_t lock; /* protects done */
	pthread_cond_t cond;
	bool done;
};

static void fetch_run_done(struct fetch_req *req)
{
	struct fetch_waiter *w = req->opaque;

	/* Signal under the lock: once it is released, fetch_run() may
	 * return and w is gone. */
	mutex_lock(&w->lock);
	w->done = true;
	if (pthread_cond_signal(&w->cond) != 0)
		abort();
	mutex_unlock(&w->lock);
}

int fetch_run(struct fetch *f, struct fetch_req *req)
{
	struct fetch_waiter w = {.done = false};

	/* done() runs on the fetch thread: waiting there would deadlock. */
	assert(!pthread_equal(pthread_self(), f->thread));
	if (pthread_mutex_init(&w.lock, NULL) != 0 ||
	    pthread_cond_init(&w.cond, NULL) != 0)
		abort();
	req->done = fetch_run_done;
	/* w outlives the request: we wait below until done() has run. */
	/* cppcheck-suppress autoVariables */
	req->opaque = &w;
	fetch_submit(f, req);
	mutex_lock(&w.lock);
	while (!w.done)
		if (pthread_cond_wait(&w.cond, &w.lock) != 0)
			abort();
	mutex_unlock(&w.lock);
	if (pthread_cond_destroy(&w.cond) != 0 ||
	    pthread_mutex_destroy(&w.lock) != 0)
		abort();
	return req->result;
}

/* Move q's requests whose opaque matches to *tail; under f->lock. */
static void queue_extract(struct fetch_queue *q, const void *opaque,
			  struct fetch_req ***tail)
{
	struct fetch_req *keep = NULL, **ktail = &keep, *req, *next;

	for (req = q->head; req; req = next) {
		next = req->next;
		req->next = NULL;
		if (req->opaque == opaque) {
			**tail = req;
			*tail = &req->next;
		} else {
			*ktail = req;
			ktail = &req->next;
		}
	}
	q->head = keep;
	q->tail = NULL;
	for (req = keep; req; req = req->next)
		q->tail = req;
}

unsigned fetch_cancel_queued(struct fetch *f, const void *opaque)
{
	struct fetch_req *list = NULL, **tail = &list;

	mutex_lock(&f->lock);
	queue_extract(&f->demand, opaque, &tail);
	queue_extract(&f->prefetch, opaque, &tail);
	queue_extract(&f->background, opaque, &tail);
	mutex_unlock(&f->lock);
	return fetch_cancel_list(f, list, "cancelled before it started");
}

void fetch_set_background_rate(struct fetch *f, uint64_t bytes_per_sec)
{
	mutex_lock(&f->lock);
	f->rate = bytes_per_sec;
	mutex_unlock(&f->lock);
	/* Waiting background requests may go now. */
	if (curl_multi_wakeup(f->multi) != CURLM_OK)
		abort();
}

void fetch_get_stats(struct fetch *f, struct fetch_stats *ret)
{
	ret->requests =
	    atomic_load_explicit(&f->st_requests, memory_order_relaxed);
	ret->bytes = atomic_load_explicit(&f->st_bytes, memory_order_relaxed);
	ret->wire_bytes =
	    atomic_load_explicit(&f->st_wire, memory_order_relaxed);
	ret->demand_requests =
	    atomic_load_explicit(&f->st_demand, memory_order_relaxed);
	ret->errors = atomic_load_explicit(&f->st_errors, memory_order_relaxed);
	ret->last_ok_wall =
	    atomic_load_explicit(&f->st_last_ok, memory_order_relaxed);
	zpolicy_get(&f->zp, &ret->compress);
}

bool fetch_demand_recent(struct fetch *f)
{
	return atomic_load_explicit(&f->recent, memory_order_relaxed);
}
