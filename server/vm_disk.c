/* SPDX-License-Identifier: MIT */
/* A version as a raw file (see vm_disk.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "manifest.h"

#include "store.h"
#include "versions.h"
#include "vm_disk.h"

/* Entries read from the manifest at a time. */
#define VM_DISK_BATCH 1024

static int copy_block(struct store *s, const uint8_t *hash, uint8_t *buf,
		      size_t len, int out, uint64_t off)
{
	_cleanup_close_ int fd = store_open_block(s, hash);
	ssize_t n;

	if (fd < 0)
		return fd == -ENOENT ? -EBADMSG : fd;
	n = read_up_to(fd, buf, len);
	if (n < 0)
		return (int)n;
	if ((size_t)n != len)
		return -EBADMSG;
	return full_pwrite(out, buf, len, (off_t)off);
}

static int write_blocks(struct versions *v, int mfd,
			const struct manifest_header *h, int out)
{
	_cleanup_free_ uint8_t *hashes = malloc(VM_DISK_BATCH * VMF_HASH_LEN);
	_cleanup_free_ uint8_t *buf = malloc(h->block_size);
	struct store *s = versions_store(v);

	if (!hashes || !buf)
		return -ENOMEM;
	for (uint64_t first = 0; first < h->nblocks; first += VM_DISK_BATCH) {
		uint64_t n = h->nblocks - first < VM_DISK_BATCH
				 ? h->nblocks - first
				 : VM_DISK_BATCH;
		int r = full_pread(mfd, hashes, (size_t)n * VMF_HASH_LEN,
				   (off_t)manifest_entry_offset(first));

		if (r < 0)
			return r;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t blk = first + i, off = blk * h->block_size;
			size_t len = h->image_size - off < h->block_size
					 ? (size_t)(h->image_size - off)
					 : h->block_size;
			const uint8_t *hash = hashes + i * VMF_HASH_LEN;

			if (hash_is_zero(hash))
				continue; /* a hole reads as zeros */
			r = copy_block(s, hash, buf, len, out, off);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int vm_disk_write(struct versions *v, const char *name, uint64_t n,
		  const char *path, uint32_t *ret_block_size)
{
	struct version_info info;
	_cleanup_close_ int mfd = -1, out = -1;
	int r;

	mfd = versions_open_manifest(v, name, n, false, &info);
	if (mfd < 0)
		return mfd;
	out = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return -errno;
	r = ftruncate(out, (off_t)info.hdr.image_size) < 0 ? -errno : 0;
	if (r == 0)
		r = write_blocks(v, mfd, &info.hdr, out);
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(path); /* r says what failed */
		return r;
	}
	*ret_block_size = info.hdr.block_size;
	return 0;
}
