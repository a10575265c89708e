/* SPDX-License-Identifier: MIT */
/* Background hydration: fetch every block still missing until the local
 * copy is complete, yielding to demand reads.  First, the boot profile's
 * blocks (docs/client.md, "Boot profiles"), in its order.
 *
 * Owns one thread.  It keeps a few background range requests in flight
 * (the fetch engine starts demand requests first and paces background
 * bytes), verifies and stores what arrives (image_store_fetched), and
 * exits when the copy is complete or on hydrate_stop().  A failed range is
 * retried with backoff; the thread never gives up while mounted.
 *
 * The profile phase claims its blocks (image_claim_listed()), so demand
 * readers wait for them rather than fetch them twice, and fetches them
 * at FETCH_PRIO_PREFETCH: after demand reads, before (and not paced as)
 * background ones.  A profile block that fails is left to the
 * background phase or to demand.
 */
#ifndef VMFERRY_HYDRATE_H
#define VMFERRY_HYDRATE_H

#include <stdbool.h>
#include <stdint.h>

struct fetch;
struct image;
struct hydrate;

/* Get the boot profile, on the hydrate thread as it starts (so that
 * the mount does not wait for it): 0 and a new array of block indices,
 * best first, in *ret (NULL when *ret_n is 0; hydrate frees it), or
 * -errno (no profile; the callback logs why). */
typedef int hydrate_profile_fn(void *opaque, uint64_t **ret, size_t *ret_n);

struct hydrate_config {
	hydrate_profile_fn *get_profile; /* NULL: no profile */
	void *opaque;			 /* for get_profile */
};

/* Start the thread.  im and f are borrowed and must outlive it.
 * Returns 0 or -errno. */
int hydrate_start(const struct hydrate_config *cfg, struct image *im,
		  struct fetch *f, struct hydrate **ret);

/* Stop and join; safe after the thread finished by itself.
 * hydrate_stop(NULL) is a no-op. */
void hydrate_stop(struct hydrate *h);

/* True while the thread still has blocks to fetch. */
bool hydrate_running(struct hydrate *h);

struct hydrate_stats {
	uint64_t profile_blocks;  /* entries in the boot profile */
	uint64_t profile_fetched; /* its blocks fetched by the profile phase */
	bool profile_done;	  /* the profile phase is over */
	uint64_t complete_ns;	  /* now_ns() when hydration found the copy
				     complete; 0 before (or never) */
};
/* Any thread; h may be NULL (all zero). */
void hydrate_get_stats(struct hydrate *h, struct hydrate_stats *ret);

#endif
