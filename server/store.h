/* SPDX-License-Identifier: MIT */
/* Content-addressed block store: DIR/blocks/XX/<64 hex>, XX being the
 * first two hex digits.  Zero blocks are never stored.
 *
 * A block appears whole or not at all (written to DIR/tmp, fsynced,
 * renamed into place, directory fsynced), so readers, writers and other
 * processes (a concurrent `import`) need no lock.  Only garbage
 * collection (gc.h) deletes blocks, under DIR/gc.lock held exclusively;
 * a commit holds it shared from checking its blocks to its commit point
 * (store_gc_lock()).  Any thread; every call may block on disk I/O.
 */
#ifndef VMFERRY_STORE_H
#define VMFERRY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct store;

/* Open the store of the server directory dir (which must exist; the
 * subdirectories are created if missing).  -ENOMEM or an I/O -errno. */
int store_open(const char *dir, struct store **ret);
void store_free(struct store *s);

/* True if the block is present (the zero hash is always "present"). */
bool store_has(struct store *s, const uint8_t hash[VMF_HASH_LEN]);

/* store_put() flag: leave the fsync of the block's directory to the
 * caller, who must store_sync_dir() it before any manifest names the
 * block (import batches these: one per directory, not per block). */
#define STORE_PUT_NO_DIR_SYNC 1u

/* Store (buf, len), whose SHA-256 the caller has checked is hash.  Sets
 * *ret_created to false if it was already there (its mtime is then
 * refreshed, so that gc's grace period protects it until the commit
 * that names it).  -EINVAL for a zero
 * hash. */
int store_put(struct store *s, const uint8_t hash[VMF_HASH_LEN],
	      const void *buf, size_t len, unsigned flags, bool *ret_created);

/* flock(DIR/gc.lock), shared (a commit) or exclusive (gc); returns the
 * locked fd in *ret_fd (closing it unlocks).  Blocks until granted.
 * Lock order: this lock before any image lock. */
int store_gc_lock(struct store *s, bool exclusive, int *ret_fd);

/* fsync blocks/XX, XX being the hex of the hash's first byte. */
int store_sync_dir(struct store *s, uint8_t first_byte);

/* Open a block for reading; returns a new fd (caller closes).  -ENOENT
 * if absent. */
int store_open_block(struct store *s, const uint8_t hash[VMF_HASH_LEN]);

/* A new temporary file in DIR/tmp, named PREFIX.XXXXXX, opened
 * read/write; returns the fd and the path in *ret_path (caller frees
 * and unlinks it when abandoning it). */
int store_mktemp(struct store *s, const char *prefix, char **ret_path);

/* The server directory (borrowed). */
const char *store_dir(const struct store *s);

#endif
