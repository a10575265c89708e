/* SPDX-License-Identifier: MIT */
/* The lifecycle watcher (see expiry.h). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "thread.h"
#include "mutex.h"
#include "util.h"

#include "expiry.h"
#include "fetch.h"
#include "remote.h"

struct expiry {
	struct expiry_config cfg; /* dir and name point at our copies */
	char *dir, *name;
	struct fetch *fetch;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;	     /* under lock */
	struct lifecycle lc; /* under lock */
};

/* One check: refresh, record, judge.  True once expired. */
static bool tick(struct expiry *e)
{
	struct remote_image img;
	struct fetch_stats fs;
	struct lifecycle lc;
	enum lifecycle_state s;
	char why[256];
	int64_t now;
	int r;

	mutex_lock(&e->lock);
	lc = e->lc;
	mutex_unlock(&e->lock);
	r = e->cfg.no_policy ? -ENOENT
			     : remote_get_image(e->fetch, e->name, &img, why);
	if (r == 0) {
		/* The policy as the server says now. */
		lc.expires = img.expires;
		lc.max_offline_s = (int64_t)img.max_offline_s;
	} else if (r == -EBADMSG) {
		log_warn("%s: %s; keeping the policy the copy was mounted "
			 "with",
			 e->name, why);
	}
	fetch_get_stats(e->fetch, &fs);
	now = now_wall();
	if (fs.last_ok_wall > lc.last_contact)
		lc.last_contact = fs.last_ok_wall;
	if (now > lc.last_seen)
		lc.last_seen = now;
	if (e->cfg.counts)
		e->cfg.counts(e->cfg.opaque, &lc);
	r = lifecycle_write(e->dir, &lc, e->cfg.data_key, e->cfg.cache_id);
	if (r < 0)
		log_warn_errno(r, "%s: recording the copy's lifecycle: %m",
			       e->name);
	mutex_lock(&e->lock);
	e->lc = lc;
	mutex_unlock(&e->lock);
	s = lifecycle_check(&lc, now, NULL);
	if (s == LIFECYCLE_OK)
		return false;
	lifecycle_describe(&lc, s, why, sizeof(why));
	e->cfg.expired(e->cfg.opaque, s, why);
	return true;
}

static void *expiry_thread(void *arg)
{
	struct expiry *e = arg;

	for (;;) {
		struct timespec ts;
		bool stop;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)e->cfg.interval_s;
		mutex_lock(&e->lock);
		while (!e->stop &&
		       pthread_cond_timedwait(&e->cond, &e->lock, &ts) == 0)
			;
		stop = e->stop;
		mutex_unlock(&e->lock);
		if (stop || tick(e))
			return NULL;
	}
}

int expiry_start(const struct expiry_config *cfg, struct fetch *f,
		 struct expiry **ret)
{
	struct expiry *e = calloc(1, sizeof(*e));
	int r;

	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->lc = cfg->lc;
	e->fetch = f;
	e->dir = strdup(cfg->dir);
	e->name = strdup(cfg->name);
	if (e->cfg.interval_s == 0)
		e->cfg.interval_s = 1;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	if (!e->dir || !e->name) {
		expiry_stop(e);
		return -ENOMEM;
	}
	r = thread_start(&e->thread, expiry_thread, e, "vmf-expiry");
	if (r < 0) {
		expiry_stop(e);
		return r;
	}
	e->started = true;
	*ret = e;
	return 0;
}

void expiry_stop(struct expiry *e)
{
	if (!e)
		return;
	if (e->started) {
		mutex_lock(&e->lock);
		e->stop = true;
		cond_broadcast(&e->cond);
		mutex_unlock(&e->lock);
		pthread_join(e->thread, NULL);
	}
	crypto_cleanse(e->cfg.data_key, sizeof(e->cfg.data_key));
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	free(e->dir);
	free(e->name);
	free(e);
}

void expiry_get(struct expiry *e, struct lifecycle *ret)
{
	mutex_lock(&e->lock);
	*ret = e->lc;
	mutex_unlock(&e->lock);
}
