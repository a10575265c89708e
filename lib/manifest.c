/* SPDX-License-Identifier: MIT */
/* Manifest encoding and validation.  Stateless. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

uint64_t manifest_nblocks(uint64_t image_size, uint32_t block_size)
{
	return image_size / block_size + (image_size % block_size != 0);
}

int manifest_header_check(const struct manifest_header *h)
{
	uint32_t bs = h->block_size;

	if (bs < VMF_BLOCK_SIZE_MIN || bs > VMF_BLOCK_SIZE_MAX ||
	    (bs & (bs - 1)) != 0)
		return -EINVAL;
	if (h->image_size > VMF_IMAGE_SIZE_MAX)
		return -EINVAL;
	if (h->nblocks != manifest_nblocks(h->image_size, bs))
		return -EINVAL;
	return 0;
}

int manifest_header_parse(const void *buf, size_t len,
			  struct manifest_header *ret)
{
	const uint8_t *p = buf;
	struct manifest_header h;

	if (len < MANIFEST_HEADER_SIZE)
		return -EBADMSG;
	if (memcmp(p, MANIFEST_MAGIC, 8) != 0)
		return -EBADMSG;
	if (get_le32(p + 8) != MANIFEST_FORMAT)
		return -EBADMSG;
	for (size_t i = 40; i < MANIFEST_HEADER_SIZE; i++)
		if (p[i])
			return -EBADMSG;
	h.block_size = get_le32(p + 12);
	h.image_size = get_le64(p + 16);
	h.nblocks = get_le64(p + 24);
	h.version = get_le64(p + 32);
	if (manifest_header_check(&h) < 0)
		return -EBADMSG;
	*ret = h;
	return 0;
}

void manifest_header_encode(const struct manifest_header *h,
			    uint8_t out[MANIFEST_HEADER_SIZE])
{
	memset(out, 0, MANIFEST_HEADER_SIZE);
	memcpy(out, MANIFEST_MAGIC, 8);
	put_le32(out + 8, MANIFEST_FORMAT);
	put_le32(out + 12, h->block_size);
	put_le64(out + 16, h->image_size);
	put_le64(out + 24, h->nblocks);
	put_le64(out + 32, h->version);
}

uint64_t manifest_encoded_size(const struct manifest_header *h)
{
	/* Cannot overflow: nblocks <= 16 TiB / 4 KiB = 2^32. */
	return manifest_entry_offset(h->nblocks);
}

int manifest_parse(const void *buf, size_t len, struct manifest *ret)
{
	struct manifest_header h;
	uint8_t *hashes;
	size_t n;
	int r;

	r = manifest_header_parse(buf, len, &h);
	if (r < 0)
		return r;
	if (manifest_encoded_size(&h) != len)
		return -EBADMSG;
	n = len - MANIFEST_HEADER_SIZE;
	hashes = malloc(n ? n : 1);
	if (!hashes)
		return -ENOMEM;
	memcpy(hashes, (const uint8_t *)buf + MANIFEST_HEADER_SIZE, n);
	ret->hdr = h;
	ret->hashes = hashes;
	return 0;
}

int manifest_encode(const struct manifest *m, uint8_t **ret_buf,
		    size_t *ret_len)
{
	uint64_t total;
	uint8_t *buf;

	if (manifest_header_check(&m->hdr) < 0)
		return -EINVAL;
	total = manifest_encoded_size(&m->hdr);
	if (total > SIZE_MAX)
		return -ENOMEM;
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	manifest_header_encode(&m->hdr, buf);
	memcpy(buf + MANIFEST_HEADER_SIZE, m->hashes,
	       total - MANIFEST_HEADER_SIZE);
	*ret_buf = buf;
	*ret_len = total;
	return 0;
}

uint32_t manifest_block_len(const struct manifest_header *h, uint64_t blkno)
{
	uint64_t off = blkno * h->block_size;

	if (off + h->block_size <= h->image_size)
		return h->block_size;
	return (uint32_t)(h->image_size - off);
}

void manifest_fini(struct manifest *m)
{
	free(m->hashes);
	m->hashes = NULL;
}
