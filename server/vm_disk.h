/* SPDX-License-Identifier: MIT */
/* A version of an image as one raw file, for a VM the server runs.
 * Stateless; blocks on disk I/O; any thread. */
#ifndef VMFERRY_VM_DISK_H
#define VMFERRY_VM_DISK_H

#include <stdint.h>

struct versions;

/* Write version n of name to path (created 0600, replaced if there):
 * every block from the store, zero blocks left as holes; fsynced.
 * Returns 0 with the version's block size in *ret_block_size, -ENOENT
 * (no such version), -EBADMSG (a block missing or of the wrong size), or
 * an I/O -errno (path is then removed). */
int vm_disk_write(struct versions *v, const char *name, uint64_t n,
		  const char *path, uint32_t *ret_block_size);

#endif
