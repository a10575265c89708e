/* SPDX-License-Identifier: MIT */
/* Per-address failure counts (ratelimit.h).
 *
 * A fixed table of RATELIMIT_ENTRIES slots searched linearly: it is
 * touched only on failures and by addresses that failed, and a linear
 * scan of 4096 small entries costs less than a TLS record.  Times are
 * monotonic seconds.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mutex.h"
#include "util.h"

#include "ratelimit.h"

#define KEY_LEN 9 /* family byte + IPv4 address or IPv6 /64 */

struct rl_entry {
	uint8_t key[KEY_LEN]; /* all zero: a free slot */
	unsigned failures;    /* within the window starting at since */
	uint64_t since;	      /* seconds, monotonic */
	uint64_t last;	      /* last failure */
	uint64_t blocked;     /* refused until then */
};

struct ratelimit {
	unsigned max, window;	/* set at creation */
	pthread_mutex_t lock;	/* protects slots */
	struct rl_entry *slots; /* RATELIMIT_ENTRIES */
};

int ratelimit_new(unsigned max, unsigned window, struct ratelimit **ret)
{
	struct ratelimit *rl;

	if (max == 0) {
		*ret = NULL;
		return 0;
	}
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return -ENOMEM;
	rl->slots = calloc(RATELIMIT_ENTRIES, sizeof(*rl->slots));
	if (!rl->slots) {
		free(rl);
		return -ENOMEM;
	}
	rl->max = max;
	rl->window = window;
	if (pthread_mutex_init(&rl->lock, NULL) != 0)
		abort();
	*ret = rl;
	return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	if (pthread_mutex_destroy(&rl->lock) != 0)
		abort();
	free(rl->slots);
	free(rl);
}

/* false for an address family we do not limit (none today). */
static bool make_key(const struct sockaddr *addr, uint8_t key[KEY_LEN])
{
	memset(key, 0, KEY_LEN);
	if (addr && addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)addr;

		key[0] = 4;
		memcpy(key + 1, &in->sin_addr, 4);
		return true;
	}
	if (addr && addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)addr;

		key[0] = 6;
		memcpy(key + 1, &in6->sin6_addr, 8); /* the /64 */
		return true;
	}
	return false;
}

static uint64_t now_secs(void)
{
	return now_ns() / 1000000000u;
}

/* The slot of key, or NULL; called with rl->lock held. */
static struct rl_entry *find(struct ratelimit *rl, const uint8_t *key)
{
	for (size_t i = 0; i < RATELIMIT_ENTRIES; i++)
		if (memcmp(rl->slots[i].key, key, KEY_LEN) == 0)
			return &rl->slots[i];
	return NULL;
}

unsigned ratelimit_check(struct ratelimit *rl, const struct sockaddr *addr)
{
	uint8_t key[KEY_LEN];
	struct rl_entry *e;
	uint64_t now = now_secs();
	unsigned wait = 0;

	if (!rl || !make_key(addr, key))
		return 0;
	mutex_lock(&rl->lock);
	e = find(rl, key);
	if (e && e->blocked > now)
		wait = (unsigned)(e->blocked - now);
	mutex_unlock(&rl->lock);
	return wait;
}

/* A free slot, else the entry not blocked whose last failure is
 * oldest (so that failing from many addresses does not free a blocked
 * one early), else the oldest of all. */
static struct rl_entry *victim(struct ratelimit *rl, uint64_t now)
{
	static const uint8_t free_key[KEY_LEN];
	struct rl_entry *old = NULL, *old_free = NULL;

	for (size_t i = 0; i < RATELIMIT_ENTRIES; i++) {
		struct rl_entry *e = &rl->slots[i];

		if (memcmp(e->key, free_key, KEY_LEN) == 0)
			return e;
		if (!old || e->last < old->last)
			old = e;
		if (e->blocked <= now &&
		    (!old_free || e->last < old_free->last))
			old_free = e;
	}
	return old_free ? old_free : old;
}

bool ratelimit_fail(struct ratelimit *rl, const struct sockaddr *addr)
{
	uint8_t key[KEY_LEN];
	struct rl_entry *e;
	uint64_t now = now_secs();
	bool blocked = false;

	if (!rl || !make_key(addr, key))
		return false;
	mutex_lock(&rl->lock);
	e = find(rl, key);
	if (!e) {
		e = victim(rl, now);
		*e = (struct rl_entry){.since = now};
		memcpy(e->key, key, KEY_LEN);
	}
	if (now - e->since >= rl->window) {
		e->since = now;
		e->failures = 0;
	}
	e->last = now;
	if (++e->failures >= rl->max && e->blocked <= now) {
		e->blocked = now + rl->window;
		e->failures = 0;
		e->since = now;
		blocked = true;
	}
	mutex_unlock(&rl->lock);
	return blocked;
}
