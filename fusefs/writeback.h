/* SPDX-License-Identifier: MIT */
/* Write-back: the guest's changes become the server's next version.
 *
 * Owns one thread.  A sync (periodic, or asked for by writeback_sync())
 * makes everything written so far durable, takes an LMDB read snapshot,
 * uploads the dirty blocks it holds that the server lacks, commits them as
 * version N+1 on top of N, then clears each dirty mark whose generation
 * did not move since the snapshot: blocks rewritten meanwhile stay dirty
 * for the next round.  The server's version is therefore always some
 * point-in-time state of the client's disk (DESIGN.md).
 */
#ifndef VMFERRY_WRITEBACK_H
#define VMFERRY_WRITEBACK_H

#include <stdint.h>

#include "proto.h"

struct cache;
struct fetch;
struct image;
struct writeback;

struct writeback_config {
	const char *name;     /* image name, copied */
	uint64_t version;     /* the version mounted (the first base) */
	uint64_t interval_s;  /* periodic sync; 0 = only when asked */
	const char *lease_id; /* sent with commits, copied; may be NULL */
	const char *holder;   /* for lease renewals, copied */
	uint64_t renew_s;     /* renew the lease this often (0: never) */
	struct cache *meta;   /* where a renewed lease id is recorded */
};

/* Start the thread.  im, c and f are borrowed and must outlive it. */
int writeback_start(const struct writeback_config *cfg, struct image *im,
		    struct cache *c, struct fetch *f, struct writeback **ret);

/* Stop and join (a sync in progress finishes first).  NULL is a no-op. */
void writeback_stop(struct writeback *w);

/* Sync now and wait.  Returns 0 and the version the server now holds
 * (*ret_version; unchanged if nothing was dirty) with the number of
 * blocks committed (*ret_blocks), -ESTALE when the server refused the
 * commit as a conflict (the changes stay in the cache), or another error;
 * ret_why (256 bytes) says what happened. */
int writeback_sync(struct writeback *w, uint64_t *ret_version,
		   uint64_t *ret_blocks, char *ret_why);

/* The current lease id into buf (room for VMF_LEASE_ID_HEX_LEN + 1);
 * empty without a lease.  Any thread. */
void writeback_lease_id(struct writeback *w, char *buf);

/* The version the server holds for this copy (the base of the next
 * commit).  Any thread. */
uint64_t writeback_version(struct writeback *w);

#endif
