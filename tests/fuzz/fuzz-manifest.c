/* SPDX-License-Identifier: MIT */
/* libFuzzer target for lib/manifest.c: a manifest comes from the network
 * (GET .../manifest, and the body of an upload).  Any input must parse or
 * fail with -EBADMSG; what parses must describe itself consistently and
 * encode back to the very same bytes.  Invariant violations abort. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The header alone: consistent fields, encodes back to its bytes. */
static int check_header(const uint8_t *data, size_t size,
			struct manifest_header *h)
{
	uint8_t out[MANIFEST_HEADER_SIZE];
	uint64_t last;
	int r;

	r = manifest_header_parse(data, size, h);
	assert(r == 0 || r == -EBADMSG);
	if (r < 0)
		return r;
	assert(manifest_header_check(h) == 0);
	assert(h->nblocks == manifest_nblocks(h->image_size, h->block_size));
	assert(manifest_encoded_size(h) ==
	       MANIFEST_HEADER_SIZE + h->nblocks * VMF_HASH_LEN);
	manifest_header_encode(h, out);
	assert(memcmp(out, data, MANIFEST_HEADER_SIZE) == 0);
	if (h->nblocks == 0) {
		assert(h->image_size == 0);
		return 0;
	}
	/* Full blocks, then a last one of 1..block_size bytes. */
	last = manifest_block_len(h, h->nblocks - 1);
	assert(last >= 1 && last <= h->block_size);
	assert((h->nblocks - 1) * h->block_size + last == h->image_size);
	if (h->nblocks > 1)
		assert(manifest_block_len(h, 0) == h->block_size);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_header h;
	struct manifest m;
	uint8_t *enc;
	size_t len;
	int hr, r;

	hr = check_header(data, size, &h);
	r = manifest_parse(data, size, &m);
	assert(r == 0 || r == -EBADMSG || r == -ENOMEM);
	if (r < 0) {
		assert(r == -ENOMEM || hr < 0 ||
		       manifest_encoded_size(&h) != size);
		return 0;
	}
	assert(hr == 0);
	assert(m.hdr.block_size == h.block_size &&
	       m.hdr.image_size == h.image_size && m.hdr.nblocks == h.nblocks &&
	       m.hdr.version == h.version);
	assert(manifest_encoded_size(&m.hdr) == size);
	assert(memcmp(m.hashes, data + MANIFEST_HEADER_SIZE,
		      size - MANIFEST_HEADER_SIZE) == 0);

	r = manifest_encode(&m, &enc, &len);
	assert(r == 0);
	assert(len == size);
	assert(memcmp(enc, data, size) == 0);
	free(enc);
	manifest_fini(&m);
	assert(m.hashes == NULL);
	return 0;
}
