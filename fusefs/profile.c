/* SPDX-License-Identifier: MIT */
/* Boot-profile recorder.  See profile.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mutex.h"
#include "proto.h"

#include "profile.h"

struct profile {
	uint64_t nblocks;     /* set at creation */
	size_t cap;	      /* set at creation */
	pthread_mutex_t lock; /* protects everything below */
	uint8_t *seen;	      /* bitmap: recorded (or dropped at the cap) */
	uint64_t *order;      /* first-read order, cap entries */
	size_t n;
	bool closed; /* no more recording: closed, or the cap reached */
};

int profile_new(uint64_t nblocks, size_t cap, struct profile **ret)
{
	struct profile *p;

	if (cap == 0 || cap > VMF_PROFILE_MAX_BLOCKS || nblocks == 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->nblocks = nblocks;
	p->cap = cap;
	p->seen = calloc(nblocks / 8 + 1, 1);
	p->order = calloc(cap, sizeof(*p->order));
	if (!p->seen || !p->order) {
		free(p->seen);
		free(p->order);
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	*ret = p;
	return 0;
}

void profile_free(struct profile *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p->seen);
	free(p->order);
	free(p);
}

void profile_note(struct profile *p, uint64_t first, uint64_t last)
{
	if (!p)
		return;
	if (last >= p->nblocks)
		last = p->nblocks - 1;
	mutex_lock(&p->lock);
	for (uint64_t b = first; b <= last && !p->closed; b++) {
		uint8_t bit = (uint8_t)(1u << (b % 8));

		if (p->seen[b / 8] & bit)
			continue;
		p->seen[b / 8] |= bit;
		p->order[p->n++] = b;
		if (p->n == p->cap)
			p->closed = true;
	}
	mutex_unlock(&p->lock);
}

int profile_close(struct profile *p, uint64_t **ret, size_t *ret_n)
{
	uint64_t *copy = NULL;
	size_t n;

	mutex_lock(&p->lock);
	p->closed = true;
	n = p->n;
	mutex_unlock(&p->lock);
	/* Closed: nothing appends any more, so the array is stable. */
	if (n) {
		copy = malloc(n * sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, p->order, n * sizeof(*copy));
	}
	*ret = copy;
	*ret_n = n;
	return 0;
}

void profile_count(struct profile *p, size_t *ret_n, bool *ret_closed)
{
	mutex_lock(&p->lock);
	*ret_n = p->n;
	*ret_closed = p->closed;
	mutex_unlock(&p->lock);
}
