/* SPDX-License-Identifier: MIT */
/* A set of block hashes in memory (see marks.h).
 *
 * Open addressing, at most half full.  The all-zero hash marks an empty
 * slot: zero blocks are never stored, so it is never a key.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

#include "marks.h"

void marks_fini(struct marks *m)
{
	free(m->slots);
}

/* SHA-256 output is uniform: its first bytes are a fine index. */
static size_t slot_of(const struct marks *m, const uint8_t *h)
{
	uint64_t x;

	memcpy(&x, h, sizeof(x));
	return (size_t)x & (m->cap - 1);
}

static bool marks_find(const struct marks *m, const uint8_t *h, size_t *ret)
{
	size_t i = slot_of(m, h);

	for (;; i = (i + 1) & (m->cap - 1)) {
		const uint8_t *s = m->slots + i * VMF_HASH_LEN;

		if (hash_is_zero(s)) {
			*ret = i;
			return false;
		}
		if (memcmp(s, h, VMF_HASH_LEN) == 0) {
			*ret = i;
			return true;
		}
	}
}

static int marks_grow(struct marks *m)
{
	struct marks bigger = {.cap = m->cap ? m->cap * 2 : 4096};
	size_t slot;

	bigger.slots = calloc(bigger.cap, VMF_HASH_LEN);
	if (!bigger.slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		const uint8_t *s = m->slots + i * VMF_HASH_LEN;

		if (hash_is_zero(s))
			continue;
		(void)marks_find(&bigger, s, &slot); /* never there yet */
		memcpy(bigger.slots + slot * VMF_HASH_LEN, s, VMF_HASH_LEN);
		bigger.n++;
	}
	free(m->slots);
	*m = bigger;
	return 0;
}

int marks_add(struct marks *m, const uint8_t *h)
{
	size_t slot;
	int r;

	if (hash_is_zero(h))
		return 0;
	if ((m->n + 1) * 2 > m->cap) {
		r = marks_grow(m);
		if (r < 0)
			return r;
	}
	if (marks_find(m, h, &slot))
		return 0;
	memcpy(m->slots + slot * VMF_HASH_LEN, h, VMF_HASH_LEN);
	m->n++;
	return 0;
}

bool marks_has(const struct marks *m, const uint8_t *h)
{
	size_t slot;

	return m->cap > 0 && marks_find(m, h, &slot);
}

bool marks_block_name(const char *sub, const char *name, uint8_t *h)
{
	if (strlen(name) != VMF_HASH_HEX_LEN || strncmp(name, sub, 2) != 0)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return hash_from_hex(name, h, VMF_HASH_LEN) == 0;
}
