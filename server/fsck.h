/* SPDX-License-Identifier: MIT */
/* vmferry-server fsck: check a server directory, optionally repair it.
 *
 * Checks that every committed version of every image is whole (its
 * manifest parses, each block it names exists and hashes to its name),
 * that `current`, lease.json, pins.json and policy.json parse, and
 * counts the leftovers: manifests above `current` (crashed commits),
 * DIR/tmp files and block files no committed version names.  Each
 * finding is one line on stdout.
 *
 * Takes DIR/gc.lock (shared to check, exclusive to repair, like gc)
 * and each image's lock while checking it, so it is safe while `serve`
 * runs: no commit is half-way while an image is looked at.  Repair
 * removes leftovers only, never a file a committed version needs: not
 * a block while any manifest could not be read, and no block or tmp
 * file modified within the grace period.  Single-threaded; blocks on
 * disk I/O and on the locks.
 */
#ifndef VMFERRY_FSCK_H
#define VMFERRY_FSCK_H

#include <stdbool.h>
#include <stdint.h>

struct store;
struct versions;

struct fsck_options {
	bool repair;
	int64_t grace; /* seconds; as gc's --grace */
};

struct fsck_result {
	uint64_t images, versions;
	uint64_t blocks_verified;  /* distinct blocks read and hashed */
	uint64_t missing, corrupt; /* distinct blocks */
	uint64_t bad_files;	   /* manifests, current, *.json */
	uint64_t above_current, above_removed;
	uint64_t tmp_files, tmp_bytes, tmp_removed, tmp_removed_bytes;
	uint64_t unref_blocks, unref_bytes, unref_young;
	uint64_t unref_removed, unref_removed_bytes;
	/* A manifest or `current` could not be read, so the blocks it
	 * may name are unknown: repair removes no block. */
	bool incomplete;
};

/* True if r reports damage or crash leftovers still in place (not the
 * DIR/tmp files and unreferenced blocks a running server always has). */
static inline bool fsck_problems(const struct fsck_result *r)
{
	return r->missing || r->corrupt || r->bad_files ||
	       r->above_current > r->above_removed;
}

/* Check (and with o->repair, repair) the store.  Returns 0 once the
 * check ran (the findings are in *ret, whatever they are), or a
 * -errno if it could not run (logged). */
int fsck_run(struct store *s, struct versions *v, const struct fsck_options *o,
	     struct fsck_result *ret);

#endif
