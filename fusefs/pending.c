/* SPDX-License-Identifier: MIT */
/* The pending commit record (see pending.h). */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hash.h"

#include "cache.h"
#include "crypto.h"
#include "pending.h"

#define PENDING_KEY   "pending_commit"
#define PENDING_MAGIC "VMFPEND1"
#define HEAD_LEN      (8 + PENDING_ID_LEN + 8 + 8)
#define ITEM_LEN      (8 + 8 + VMF_HASH_LEN)

int pending_new_id(char *id)
{
	uint8_t raw[PENDING_ID_LEN / 2];
	int r = crypto_random(raw, sizeof(raw));

	if (r < 0)
		return r;
	hash_to_hex(raw, sizeof(raw), id);
	return 0;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

int pending_put(struct cache *c, const struct pending *p)
{
	size_t len = HEAD_LEN + p->n * ITEM_LEN;
	_cleanup_free_ uint8_t *buf = malloc(len);
	uint8_t *q;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, PENDING_MAGIC, 8);
	memcpy(buf + 8, p->id, PENDING_ID_LEN);
	put_u64(buf + 8 + PENDING_ID_LEN, p->base);
	put_u64(buf + 16 + PENDING_ID_LEN, p->n);
	q = buf + HEAD_LEN;
	for (size_t i = 0; i < p->n; i++, q += ITEM_LEN) {
		put_u64(q, p->items[i].blkno);
		put_u64(q + 8, p->items[i].gen);
		memcpy(q + 16, p->items[i].hash, VMF_HASH_LEN);
	}
	return cache_meta_put(c, PENDING_KEY, buf, len);
}

int pending_clear(struct cache *c)
{
	return cache_meta_put(c, PENDING_KEY, "", 0);
}

int pending_get(struct cache *c, struct pending *ret)
{
	_cleanup_free_ uint8_t *buf = NULL;
	struct pending p = {0};
	const uint8_t *q;
	size_t len;
	int r;

	r = cache_meta_get(c, PENDING_KEY, (void **)&buf, &len);
	if (r < 0)
		return r == -ENOENT ? -ENOENT : r;
	if (len == 0)
		return -ENOENT;
	if (len < HEAD_LEN || memcmp(buf, PENDING_MAGIC, 8) != 0)
		return -EBADMSG;
	memcpy(p.id, buf + 8, PENDING_ID_LEN);
	p.base = get_u64(buf + 8 + PENDING_ID_LEN);
	p.n = get_u64(buf + 16 + PENDING_ID_LEN);
	if (p.n != (len - HEAD_LEN) / ITEM_LEN ||
	    (len - HEAD_LEN) % ITEM_LEN != 0)
		return -EBADMSG;
	p.items = calloc(p.n ? p.n : 1, sizeof(*p.items));
	if (!p.items)
		return -ENOMEM;
	q = buf + HEAD_LEN;
	for (size_t i = 0; i < p.n; i++, q += ITEM_LEN) {
		p.items[i].blkno = get_u64(q);
		p.items[i].gen = get_u64(q + 8);
		memcpy(p.items[i].hash, q + 16, VMF_HASH_LEN);
	}
	*ret = p;
	return 0;
}

void pending_fini(struct pending *p)
{
	free(p->items);
	p->items = NULL;
	p->n = 0;
}
