/* SPDX-License-Identifier: MIT */
/* Boot profiles: the order in which clients first read a version's
 * blocks, merged over every upload (docs/protocol.md, "Boot profiles").
 *
 * A profile is a list of block indices, best first.  Each entry keeps
 * the sum of the positions (ranks, from 0) it had in the uploads that
 * named it and how many those were; the order is by mean rank, then by
 * more uploads, then by lower block index.  At most
 * VMF_PROFILE_MAX_BLOCKS entries are kept (the worst go).
 *
 * Stored as images/NAME/profiles/N.json; a merge is read-modify-write
 * under the image lock (versions_lock_existing()), replaced atomically,
 * so readers take no lock.  The parse and merge functions are pure; the
 * store functions block on disk I/O.  Any thread.
 */
#ifndef VMFERRY_PROFILES_H
#define VMFERRY_PROFILES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct versions;

struct profile_entry {
	uint64_t block;
	uint64_t rank_sum; /* positions in the uploads that named it */
	uint64_t uploads;  /* how many uploads named it (>= 1) */
};

struct profile {
	uint64_t version; /* the version it was recorded on */
	uint32_t block_size;
	uint64_t uploads;	 /* uploads merged into it */
	struct profile_entry *e; /* best first; owned */
	size_t n;
};

void profiles_fini(struct profile *p);

/* Check an upload's body, {"version": N, "blocks": [B, ...]}: a JSON
 * object whose "version" is version, and 1 to VMF_PROFILE_MAX_BLOCKS
 * distinct integers 0 <= B < nblocks.  Returns 0 and a new array in
 * *ret (caller frees) with its length in *ret_n; -EBADMSG with a static
 * reason in *ret_why; or -ENOMEM. */
int profiles_parse_upload(const void *body, size_t len, uint64_t version,
			  uint64_t nblocks, uint64_t **ret, size_t *ret_n,
			  const char **ret_why);

/* Merge one upload (blocks[i] was read i-th; distinct) into p and sort
 * it.  Returns 0 or -ENOMEM (p unchanged). */
int profiles_merge(struct profile *p, const uint64_t *blocks, size_t n);

/* Merge an upload into the stored profile of version `version` of
 * name (whose blocks are block_size bytes), under the image lock, and
 * drop the stored profiles of versions that no longer exist.  *ret
 * gets the new profile's uploads and length (ret->e NULL).  Returns 0,
 * -ENOENT (no such image) or -errno. */
int profiles_store_merge(struct versions *v, const char *name, uint64_t version,
			 uint32_t block_size, const uint64_t *blocks, size_t n,
			 struct profile *ret);

/* The stored profile of the newest version <= version that has one.
 * Returns 0 and *ret (caller calls profiles_fini()), -ENOENT (none), or
 * -errno.  An unreadable profile file is logged and skipped. */
int profiles_load_nearest(struct versions *v, const char *name,
			  uint64_t version, struct profile *ret);

/* The GET answer for p: {"version", "block_size", "uploads", "blocks"}.
 * A new reference, or NULL (out of memory). */
json_t *profiles_to_json(const struct profile *p);

#endif
