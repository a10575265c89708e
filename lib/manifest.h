/* SPDX-License-Identifier: MIT */
/* Manifest: the binary list of block hashes of one image version.
 *
 * Layout (little-endian), see docs/protocol.md:
 *   0   8  magic "VMFMANI1"
 *   8   4  format (1)
 *   12  4  block size (power of two, VMF_BLOCK_SIZE_MIN..MAX)
 *   16  8  image size in bytes
 *   24  8  number of blocks = ceil(image size / block size)
 *   32  8  image version (assigned by the server; 0 in an upload)
 *   40  24 reserved, zero
 *   64  32 * nblocks  SHA-256 of each block; all zero marks a zero block
 * The last block's hash covers only its bytes inside the image.
 *
 * A manifest is fixed-size per entry so a reader can fetch any piece of
 * it with a Range request: entry i is at manifest_entry_offset(i).
 * Stateless; any thread.
 */
#ifndef VMFERRY_MANIFEST_H
#define VMFERRY_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define MANIFEST_MAGIC	     "VMFMANI1"
#define MANIFEST_FORMAT	     1u
#define MANIFEST_HEADER_SIZE 64u

struct manifest_header {
	uint32_t block_size;
	uint64_t image_size;
	uint64_t nblocks;
	uint64_t version;
};

/* A whole manifest in memory. */
struct manifest {
	struct manifest_header hdr;
	uint8_t *hashes; /* nblocks * VMF_HASH_LEN, owned */
};

/* Number of blocks of an image; 0 for an empty image. */
uint64_t manifest_nblocks(uint64_t image_size, uint32_t block_size);

/* Validate a header's fields against each other and the limits.
 * Returns 0 or -EINVAL. */
int manifest_header_check(const struct manifest_header *h);

/* Parse and validate the first MANIFEST_HEADER_SIZE bytes of buf.
 * Returns 0, or -EBADMSG if len is short, the magic or format is wrong,
 * a reserved byte is set or a field is out of range. */
int manifest_header_parse(const void *buf, size_t len,
			  struct manifest_header *ret);

/* Encode a header (which must pass manifest_header_check). */
void manifest_header_encode(const struct manifest_header *h,
			    uint8_t out[MANIFEST_HEADER_SIZE]);

/* Total encoded size of a manifest with h's nblocks. */
uint64_t manifest_encoded_size(const struct manifest_header *h);

/* Byte offset of entry blkno within an encoded manifest. */
static inline uint64_t manifest_entry_offset(uint64_t blkno)
{
	return MANIFEST_HEADER_SIZE + blkno * VMF_HASH_LEN;
}

/* Parse a whole encoded manifest.  Returns 0, -EBADMSG if it does not
 * parse or its length is not exactly what the header says, or -ENOMEM.
 * On success ret->hashes is a new buffer; free with manifest_fini(). */
int manifest_parse(const void *buf, size_t len, struct manifest *ret);

/* Encode m; returns a new buffer of manifest_encoded_size() bytes in
 * *ret_buf (caller frees), or -ENOMEM / -EINVAL. */
int manifest_encode(const struct manifest *m, uint8_t **ret_buf,
		    size_t *ret_len);

/* Hash of block blkno (borrowed from m). */
static inline const uint8_t *manifest_hash(const struct manifest *m,
					   uint64_t blkno)
{
	return m->hashes + blkno * VMF_HASH_LEN;
}

/* Length of block blkno (the last one may be short). */
uint32_t manifest_block_len(const struct manifest_header *h, uint64_t blkno);

void manifest_fini(struct manifest *m);

#endif
