/* SPDX-License-Identifier: MIT */
/* The bounded cache (--max-cache): the LRU of evictable blocks, and
 * moving the image onto each version this mount commits, after which its
 * synced blocks can be evicted and fetched again like any other.
 *
 * A block is evictable when it is stored and not written (a written block
 * exists only here until a commit holds it).  The LRU is two arrays of
 * block indices, allocated only with a bound; every function here but
 * image_rebase() is called with im->lock held.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#include "image_int.h"

int image_lru_init(struct image *im)
{
	uint64_t nb = im->hdr.nblocks;

	if (!im->max_blocks)
		return 0;
	if (nb >= LRU_OUT)
		return -EFBIG;
	im->lru_prev = malloc(nb * sizeof(*im->lru_prev));
	im->lru_next = malloc(nb * sizeof(*im->lru_next));
	if (!im->lru_prev || !im->lru_next)
		return -ENOMEM;
	for (uint64_t b = 0; b < nb; b++)
		im->lru_prev[b] = LRU_OUT;
	im->lru_head = im->lru_tail = LRU_END;
	im->lru_len = 0;
	/* What the cache holds, in block order: no recency survives a
	 * remount. */
	for (uint64_t b = 0; b < nb; b++)
		if (bit_get(im->present, b) && !bit_get(im->written, b))
			image_lru_touch(im, b);
	return 0;
}

void image_lru_remove(struct image *im, uint64_t b)
{
	uint32_t p, n;

	if (!im->lru_prev || im->lru_prev[b] == LRU_OUT)
		return;
	p = im->lru_prev[b];
	n = im->lru_next[b];
	if (p == LRU_END)
		im->lru_head = n;
	else
		im->lru_next[p] = n;
	if (n == LRU_END)
		im->lru_tail = p;
	else
		im->lru_prev[n] = p;
	im->lru_prev[b] = LRU_OUT;
	im->lru_len--;
}

void image_lru_touch(struct image *im, uint64_t b)
{
	if (!im->lru_prev)
		return;
	image_lru_remove(im, b);
	im->lru_prev[b] = im->lru_tail;
	im->lru_next[b] = LRU_END;
	if (im->lru_tail == LRU_END)
		im->lru_head = (uint32_t)b;
	else
		im->lru_next[im->lru_tail] = (uint32_t)b;
	im->lru_tail = (uint32_t)b;
	im->lru_len++;
}

size_t image_lru_victims(struct image *im, uint64_t n, uint64_t *victims)
{
	size_t k = 0;

	while (k < n && im->lru_head != LRU_END) {
		uint64_t b = im->lru_head;

		image_lru_remove(im, b);
		victims[k++] = b;
	}
	return k;
}

int image_rebase(struct image *im, uint64_t version, const char *data_path)
{
	char *path = strdup(data_path), **grown;
	uint64_t moved = 0;

	if (!path)
		return -ENOMEM;
	lock(im);
	grown = realloc(im->old_paths,
			(im->nold_paths + 1) * sizeof(*im->old_paths));
	if (!grown) {
		unlock(im);
		free(path);
		return -ENOMEM;
	}
	im->old_paths = grown;
	im->old_paths[im->nold_paths++] = im->data_path;
	im->data_path = path;
	/* A written block that is clean now holds what the new version
	 * holds: it becomes a plain block of that version. */
	for (uint64_t b = 0; b < im->hdr.nblocks; b++) {
		uint8_t *entry;

		if (!bit_get(im->written, b) || bit_get(im->dirty, b) ||
		    bit_get(im->wlock, b) ||
		    !im->pages[b / MANIFEST_PAGE_ENTRIES])
			continue;
		entry = im->pages[b / MANIFEST_PAGE_ENTRIES] +
			(b % MANIFEST_PAGE_ENTRIES) * VMF_HASH_LEN;
		memcpy(entry, image_cur_hash(im, b), VMF_HASH_LEN);
		bit_clear(im->written, b);
		im->written_count--;
		if (bit_get(im->present, b))
			image_lru_touch(im, b);
		moved++;
	}
	cond_broadcast(&im->cond); /* writers waiting for room */
	unlock(im);
	log_debug(LOG_CAT_CACHE,
		  "%s: now on version %" PRIu64 ", %" PRIu64
		  " synced blocks evictable",
		  im->name, version, moved);
	return 0;
}
