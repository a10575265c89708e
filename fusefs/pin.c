/* SPDX-License-Identifier: MIT */
/* The pin keeper (see pin.h): one thread that sleeps until the next
 * renewal or until told to stop. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "thread.h"
#include "mutex.h"
#include "util.h"

#include "lease.h"
#include "pin.h"

struct pin_keeper {
	struct fetch *fetch;
	char *name, *holder;
	uint64_t version;
	struct lease pin; /* the keeper thread's, once started */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop; /* under lock */
};

static void renew(struct pin_keeper *k)
{
	struct lease p;
	char why[256];
	int r;

	r = lease_pin(k->fetch, k->name, k->holder, k->pin.id, k->version, &p,
		      why);
	if (r < 0) {
		log_warn("%s: renewing the pin on version %llu: %s", k->name,
			 (unsigned long long)k->version, why);
		return;
	}
	if (!p.renewed)
		log_warn("%s: the pin on version %llu had lapsed; pinned again",
			 k->name, (unsigned long long)k->version);
	k->pin = p;
}

static void *keeper_thread(void *arg)
{
	struct pin_keeper *k = arg;

	for (;;) {
		/* A third of the pin's length: two renewals may fail. */
		int64_t len = k->pin.expires - k->pin.since;
		struct timespec ts;
		bool stop;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += len > 3 ? len / 3 : 1;
		mutex_lock(&k->lock);
		while (!k->stop &&
		       pthread_cond_timedwait(&k->cond, &k->lock, &ts) == 0)
			;
		stop = k->stop;
		mutex_unlock(&k->lock);
		if (stop)
			return NULL;
		renew(k);
	}
}

int pin_keeper_start(struct fetch *f, const char *name, const char *holder,
		     uint64_t version, struct pin_keeper **ret, char *ret_why)
{
	struct pin_keeper *k = calloc(1, sizeof(*k));
	int r;

	if (!k)
		return -ENOMEM;
	k->fetch = f;
	k->version = version;
	k->name = strdup(name);
	k->holder = strdup(holder);
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cond, NULL);
	if (!k->name || !k->holder) {
		snprintf(ret_why, 256, "out of memory");
		pin_keeper_stop(k);
		return -ENOMEM;
	}
	r = lease_pin(f, name, holder, NULL, version, &k->pin, ret_why);
	if (r < 0) {
		pin_keeper_stop(k);
		return r;
	}
	r = thread_start(&k->thread, keeper_thread, k, "vmf-pin");
	if (r < 0) {
		snprintf(ret_why, 256, "cannot start a thread");
		pin_keeper_stop(k);
		return r;
	}
	k->started = true;
	*ret = k;
	return 0;
}

void pin_keeper_stop(struct pin_keeper *k)
{
	char why[256];

	if (!k)
		return;
	if (k->started) {
		mutex_lock(&k->lock);
		k->stop = true;
		cond_broadcast(&k->cond);
		mutex_unlock(&k->lock);
		pthread_join(k->thread, NULL);
	}
	if (*k->pin.id && lease_unpin(k->fetch, k->name, k->pin.id, why) < 0)
		log_warn("%s: releasing the pin on version %llu: %s", k->name,
			 (unsigned long long)k->version, why);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->cond);
	free(k->holder);
	free(k->name);
	free(k);
}
