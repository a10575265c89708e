/* SPDX-License-Identifier: MIT */
/* Boot-profile recorder: the order in which a session first reads its
 * blocks (docs/client.md, "Boot profiles").
 *
 * Owns a bitmap of the blocks seen (one bit per block) and an
 * append-only array of at most `cap` block indices in first-read order.
 * Recording stops at the cap or at profile_close().  Any thread may call
 * profile_note() (FUSE workers, through image_read()); p->lock is a leaf
 * lock held only for the bitmap test and the append.  No I/O.
 */
#ifndef VMFERRY_PROFILE_H
#define VMFERRY_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct profile;

/* A recorder for an image of nblocks blocks keeping at most cap
 * indices (1 to VMF_PROFILE_MAX_BLOCKS).  Returns 0, -EINVAL or
 * -ENOMEM. */
int profile_new(uint64_t nblocks, size_t cap, struct profile **ret);
/* profile_free(NULL) is a no-op. */
void profile_free(struct profile *p);

/* Blocks first..last (inclusive) were read, in that order: append those
 * not seen before, while recording.  p may be NULL (not recording). */
void profile_note(struct profile *p, uint64_t first, uint64_t last);

/* Stop recording (later notes are ignored) and copy what was recorded
 * into *ret (a new array, caller frees; NULL when *ret_n is 0).
 * Returns 0 or -ENOMEM. */
int profile_close(struct profile *p, uint64_t **ret, size_t *ret_n);

/* Blocks recorded so far, and whether recording has stopped. */
void profile_count(struct profile *p, size_t *ret_n, bool *ret_closed);

#endif
