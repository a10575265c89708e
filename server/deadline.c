/* SPDX-License-Identifier: MIT */
/* Request deadlines (deadline.h).
 *
 * Owns the watchdog thread and the list of watched connections, both
 * under d->lock.  The lock is held for list updates and for the scan,
 * which makes only shutdown() calls (they do not block).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "mutex.h"
#include "util.h"

#include "deadline.h"

struct deadline_conn {
	struct deadline *d;
	struct deadline_conn *prev, *next; /* protected by d->lock */
	int fd;				   /* set at begin */
	char addr[DEADLINE_ADDR_LEN];	   /* set at begin */
	bool receiving;			   /* protected by d->lock */
	bool cut;			   /* protected by d->lock */
	uint64_t start_ns;		   /* protected by d->lock */
	uint64_t body;			   /* protected by d->lock */
};

struct deadline {
	unsigned timeout;	     /* set at start */
	uint64_t min_rate;	     /* set at start */
	pthread_mutex_t lock;	     /* protects conns, stop */
	pthread_cond_t wake;	     /* stop was set */
	struct deadline_conn *conns; /* watched connections */
	bool stop;
	pthread_t thread;
};

/* The deadline of c in ns; with d->lock held. */
static uint64_t deadline_of(const struct deadline *d,
			    const struct deadline_conn *c)
{
	uint64_t secs = d->timeout;

	if (d->min_rate)
		secs += c->body / d->min_rate;
	return c->start_ns + secs * 1000000000u;
}

#define SCAN_LOGGED 8 /* addresses logged per scan */

/* Cut the connections past their deadline; with d->lock held.  Copies
 * the first addresses cut into addrs (logged after the unlock).
 * Returns how many. */
static unsigned scan(struct deadline *d, char addrs[][DEADLINE_ADDR_LEN])
{
	uint64_t now = now_ns();
	unsigned n = 0;

	for (struct deadline_conn *c = d->conns; c; c = c->next) {
		if (!c->receiving || c->cut || now < deadline_of(d, c))
			continue;
		c->cut = true;
		if (n < SCAN_LOGGED)
			memcpy(addrs[n], c->addr, DEADLINE_ADDR_LEN);
		n++;
		/* Wakes the connection's thread, which closes it. */
		(void)shutdown(c->fd, SHUT_RDWR); /* may be closing already */
	}
	return n;
}

static void *watchdog(void *arg)
{
	struct deadline *d = arg;
	struct timespec ts;

	mutex_lock(&d->lock);
	while (!d->stop) {
		char addrs[SCAN_LOGGED][DEADLINE_ADDR_LEN];
		unsigned n = scan(d, addrs);

		if (n) {
			mutex_unlock(&d->lock);
			for (unsigned i = 0; i < n && i < SCAN_LOGGED; i++)
				log_info("%s: closed a connection sending a "
					 "request too slowly (over %u s, or "
					 "under %" PRIu64 " bytes/s of body)",
					 addrs[i], d->timeout, d->min_rate);
			if (n > SCAN_LOGGED)
				log_info("closed %u more such connections",
					 n - SCAN_LOGGED);
			mutex_lock(&d->lock);
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		/* ETIMEDOUT is the normal wake-up. */
		(void)pthread_cond_timedwait(&d->wake, &d->lock, &ts);
	}
	mutex_unlock(&d->lock);
	return NULL;
}

int deadline_start(unsigned timeout, uint64_t min_rate, struct deadline **ret)
{
	struct deadline *d;
	pthread_condattr_t attr;
	sigset_t all, old;
	int r;

	*ret = NULL;
	if (timeout == 0)
		return 0;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->timeout = timeout;
	d->min_rate = min_rate;
	if (pthread_mutex_init(&d->lock, NULL) != 0 ||
	    pthread_condattr_init(&attr) != 0 ||
	    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&d->wake, &attr) != 0)
		abort();
	pthread_condattr_destroy(&attr);
	/* Signals are taken by the main thread only. */
	sigfillset(&all);
	if (pthread_sigmask(SIG_BLOCK, &all, &old) != 0)
		abort();
	r = -pthread_create(&d->thread, NULL, watchdog, d);
	if (pthread_sigmask(SIG_SETMASK, &old, NULL) != 0)
		abort();
	if (r < 0) {
		pthread_cond_destroy(&d->wake);
		pthread_mutex_destroy(&d->lock);
		free(d);
		return r;
	}
	*ret = d;
	return 0;
}

void deadline_stop(struct deadline *d)
{
	if (!d)
		return;
	mutex_lock(&d->lock);
	d->stop = true;
	cond_signal(&d->wake);
	mutex_unlock(&d->lock);
	if (pthread_join(d->thread, NULL) != 0)
		abort();
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

struct deadline_conn *deadline_conn_begin(struct deadline *d, int fd,
					  const char *addr)
{
	struct deadline_conn *c;

	if (!d || fd < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->d = d;
	c->fd = fd;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->receiving = true;
	c->start_ns = now_ns();
	mutex_lock(&d->lock);
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = c;
	mutex_unlock(&d->lock);
	return c;
}

void deadline_conn_body(struct deadline_conn *c, uint64_t len)
{
	if (!c)
		return;
	mutex_lock(&c->d->lock);
	c->body += len;
	mutex_unlock(&c->d->lock);
}

void deadline_conn_received(struct deadline_conn *c)
{
	if (!c)
		return;
	mutex_lock(&c->d->lock);
	c->receiving = false;
	mutex_unlock(&c->d->lock);
}

void deadline_conn_next(struct deadline_conn *c)
{
	if (!c)
		return;
	mutex_lock(&c->d->lock);
	c->receiving = true;
	c->start_ns = now_ns();
	c->body = 0;
	mutex_unlock(&c->d->lock);
}

void deadline_conn_end(struct deadline_conn *c)
{
	struct deadline *d;

	if (!c)
		return;
	d = c->d;
	mutex_lock(&d->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	mutex_unlock(&d->lock);
	free(c);
}
