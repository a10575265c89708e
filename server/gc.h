/* SPDX-License-Identifier: MIT */
/* Garbage collection of the block store, and retention on every image.
 *
 * Under DIR/gc.lock held exclusively (store_gc_lock()), which waits for
 * running commits to reach their commit point and holds new ones before
 * their block check:
 *   1. each image, under its image lock: drop the versions retention
 *      does not keep (retention.h), then mark every block the kept
 *      versions' manifests name;
 *   2. sweep: unlink each block file not marked, unless its mtime is
 *      within the grace period;
 *   3. unlink DIR/tmp files older than the grace period.
 * The grace period protects blocks uploaded for a commit that has not
 * happened yet: a client uploads its blocks first (store_put() writes
 * or freshens them) and commits later, holding no lock in between.
 * Reads go on throughout; only reads of dropped versions fail.
 *
 * Single caller (the gc command); blocks on disk I/O and on the locks.
 */
#ifndef VMFERRY_GC_H
#define VMFERRY_GC_H

#include <stdbool.h>
#include <stdint.h>

struct store;
struct versions;

#define GC_GRACE_DEFAULT 3600 /* seconds */

struct gc_options {
	uint64_t keep_versions; /* unless policy.json says; >= 1 */
	int64_t grace;		/* seconds; 0: none */
	bool dry_run;		/* count only: drop and unlink nothing */
};

struct gc_result {
	uint64_t images;
	uint64_t versions_kept;
	uint64_t versions_dropped; /* with dry_run: would be */
	uint64_t blocks_kept;	   /* block files a kept version names */
	uint64_t blocks_young;	   /* unnamed, but within the grace period */
	uint64_t blocks_removed;   /* with dry_run: would be */
	uint64_t bytes_removed;
	uint64_t tmp_removed;
	uint64_t tmp_bytes;
};

/* Run a collection.  Returns 0 or a -errno: -EBADMSG if a kept
 * manifest or a policy.json is corrupt, in which case nothing is swept
 * (what was marked may be incomplete). */
int gc_run(struct store *s, struct versions *v, const struct gc_options *o,
	   struct gc_result *ret);

#endif
