/* SPDX-License-Identifier: MIT */
/* Background hydration: fetch every block still missing until the local
 * copy is complete, yielding to demand reads.
 *
 * Owns one thread.  It keeps a few background range requests in flight
 * (the fetch engine starts demand requests first and paces background
 * bytes), verifies and stores what arrives (image_store_fetched), and
 * exits when the copy is complete or on hydrate_stop().  A failed range is
 * retried with backoff; the thread never gives up while mounted.
 */
#ifndef VMFERRY_HYDRATE_H
#define VMFERRY_HYDRATE_H

#include <stdbool.h>
#include <stdint.h>

struct fetch;
struct image;
struct hydrate;

/* Start the thread.  im and f are borrowed and must outlive it.
 * Returns 0 or -errno. */
int hydrate_start(struct image *im, struct fetch *f, struct hydrate **ret);

/* Stop and join; safe after the thread finished by itself.
 * hydrate_stop(NULL) is a no-op. */
void hydrate_stop(struct hydrate *h);

/* True while the thread still has blocks to fetch. */
bool hydrate_running(struct hydrate *h);

#endif
