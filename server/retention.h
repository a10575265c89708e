/* SPDX-License-Identifier: MIT */
/* Retention: which versions of an image are kept, and dropping the rest.
 *
 * An image keeps its last N committed versions (policy.json
 * "keep_versions", else the caller's default, RETENTION_KEEP_DEFAULT
 * unless told), its current version always, the version named by its
 * live lease (leases.h), if any, and every version a live pin names
 * (pins.h).  A dropped version's manifest and
 * history record are unlinked (manifest first: its absence is what
 * makes the version gone), after which a GET of it answers 404.
 * Blocks are left to gc (gc.h).
 *
 * The callers hold the image lock (versions_lock_image()).  Any thread;
 * blocks on disk I/O.
 */
#ifndef VMFERRY_RETENTION_H
#define VMFERRY_RETENTION_H

#include <stddef.h>
#include <stdint.h>

struct versions;

#define RETENTION_KEEP_DEFAULT 10
#define RETENTION_KEEP_MAX     1000000

struct retention_plan {
	uint64_t current;
	uint64_t *keep; /* ascending, new array */
	size_t nkeep;
	uint64_t *drop; /* ascending, new array */
	size_t ndrop;
};

void retention_plan_fini(struct retention_plan *p);

/* Under the image lock: which committed versions of name to keep and
 * drop, keeping keep_default (>= 1) unless policy.json says.  -EBADMSG
 * if policy.json or its keep_versions, or pins.json, is bad (nothing is then
 * dropped), else errors as versions_numbers(). */
int retention_plan(struct versions *v, const char *name, uint64_t keep_default,
		   struct retention_plan *ret);

/* Under the image lock: drop p's versions.  Returns 0 or the first
 * -errno (the others are still tried). */
int retention_drop(struct versions *v, const char *name,
		   const struct retention_plan *p);

/* Both, for commit.c (under its image lock); *ret_dropped (may be
 * NULL) is how many versions went. */
int retention_apply(struct versions *v, const char *name, uint64_t keep_default,
		    size_t *ret_dropped);

/* Parse a --keep-versions value for command cmd: 0 and *ret, or the
 * usage error's exit status (2), already reported. */
int retention_parse_keep(const char *cmd, const char *arg, uint64_t *ret);

#endif
