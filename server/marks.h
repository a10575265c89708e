/* SPDX-License-Identifier: MIT */
/* A set of block hashes in memory, 32 bytes per distinct hash (gc's
 * marks, fsck's verified blocks).  Zero-initialise a struct marks to
 * start; marks_fini() frees it.  Not thread-safe.
 */
#ifndef VMFERRY_MARKS_H
#define VMFERRY_MARKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct marks {
	uint8_t *slots; /* cap * VMF_HASH_LEN; all zero: empty */
	size_t cap;	/* a power of two */
	size_t n;
};

void marks_fini(struct marks *m);

/* Add h (a no-op for the zero hash or one already there); -ENOMEM. */
int marks_add(struct marks *m, const uint8_t *h);

/* True if h was added. */
bool marks_has(const struct marks *m, const uint8_t *h);

/* True if name is a block file's name in blocks/sub: 64 lower-case hex
 * digits beginning with sub; the hash into h (gc and fsck). */
bool marks_block_name(const char *sub, const char *name, uint8_t *h);

#endif
