/* SPDX-License-Identifier: MIT */
/* Import a raw image file as the next version of an image.
 *
 * Streams: memory is one block plus a fixed buffer of hashes, whatever
 * the image size.  Safe next to a running server on the same directory
 * (see store.h and versions.h).  Blocks on disk I/O; one thread.
 */
#ifndef VMFERRY_IMPORT_H
#define VMFERRY_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

struct store;
struct versions;

struct import_result {
	uint64_t version;
	uint64_t size; /* bytes */
	uint64_t nblocks;
	uint64_t new_blocks;	 /* stored by this import */
	uint64_t zero_blocks;	 /* all zero: not stored */
	uint64_t present_blocks; /* already in the store */
	bool unchanged; /* skip_unchanged and the same as base: no commit,
			 * version is base */
};

/* Read path (a regular file or block device) in block_size blocks,
 * store the blocks the store lacks, and commit the manifest as version
 * current+1 of name.  Draws a progress bar on stderr when it is a
 * terminal and show_progress is set.  Returns 0, -EINVAL (bad name or
 * block size), -EFBIG (larger than VMF_IMAGE_SIZE_MAX), -EIO if the
 * file shrank while being read, or what store_put() and
 * commit_manifest() return. */
int import_file(struct store *s, struct versions *v, const char *name,
		const char *path, uint32_t block_size, bool show_progress,
		struct import_result *ret);

/* How import_file_as() commits (commit.h): on top of base, presenting
 * the lease lease_id when check_lease, in the name of author, with
 * retention keeping keep_versions (0: drop nothing).  skip_unchanged:
 * a file whose manifest is base's is not committed (no new version). */
struct import_commit {
	uint64_t base;
	bool skip_unchanged;
	bool check_lease;
	const char *lease_id;
	const char *author;
	uint64_t keep_versions;
};

/* import_file() without a progress bar, committed as how says: a VM the
 * server ran (vm.c) commits its disk as a client would, under its
 * lease.  Also -EBUSY (the lease check failed) and -ESTALE (base is not
 * current) from commit_manifest(). */
int import_file_as(struct store *s, struct versions *v, const char *name,
		   const char *path, uint32_t block_size,
		   const struct import_commit *how, struct import_result *ret);

#endif
