/* SPDX-License-Identifier: MIT */
/* A sync's commit, recorded before it is sent (the cache's meta value
 * "pending_commit"), so that a client that dies after the server
 * committed but before the copy recorded it can finish the sync at the
 * next mount: the same commit is sent again under the same id (commits
 * are idempotent by id: the server answers the version it made), and
 * the copy is cleaned as the sync would have done.  Without it the copy
 * would hold changes "made on version N" while the server is at N+1,
 * and refuse to mount (docs/faults.md, "Client crashes").
 *
 * Record: "VMFPEND1" | commit id (32 hex) | base (u64 LE) | n (u64 LE) |
 * n x {blkno (u64 LE), generation (u64 LE), hash (32)}.  An empty value
 * means none.  Stateless; any thread.
 */
#ifndef VMFERRY_PENDING_H
#define VMFERRY_PENDING_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct cache;

#define PENDING_ID_LEN 32 /* hex digits */

struct pending_item {
	uint64_t blkno, gen;
	uint8_t hash[VMF_HASH_LEN];
};

struct pending {
	char id[PENDING_ID_LEN + 1];
	uint64_t base;
	struct pending_item *items; /* owned */
	size_t n;
};

/* A new random commit id into id (PENDING_ID_LEN + 1 bytes). */
int pending_new_id(char *id);

/* Record p in c (durable when this returns 0). */
int pending_put(struct cache *c, const struct pending *p);

/* Forget the record. */
int pending_clear(struct cache *c);

/* The record, if any: 0 and *ret (free with pending_fini()), -ENOENT if
 * none, -EBADMSG if it does not parse. */
int pending_get(struct cache *c, struct pending *ret);

void pending_fini(struct pending *p);

#endif
