/* SPDX-License-Identifier: MIT */
/* Block cache in LMDB.
 *
 * Owns the LMDB environment of one image's cache directory (DIR/data.mdb,
 * DIR/lock.mdb).  Blocks are stored sealed (crypto.h), keyed by block
 * index; callers only ever see plaintext that authenticated.  A block is
 * stored together with the content hash it was verified against: that
 * hash is part of the AAD, so cache_get() with a different expected hash
 * fails (-EBADMSG) instead of returning stale or moved bytes.
 *
 * Named databases: "blocks" (u64 big-endian blkno -> sealed block),
 * "meta" (string key -> sealed small value, AAD "meta:" + key) and
 * "dirty" (u64 big-endian blkno -> sealed {u64 generation, hash}: the
 * blocks written through the mount and not yet synced, sealed like a
 * meta value under the key "dirty:" + blkno).
 *
 * Threading: any thread may call any function.  The environment is opened
 * with MDB_NOTLS; read transactions are short.  Writes are serialised by
 * LMDB's write lock; cache_put_batch() puts many blocks in one write
 * transaction.  Never opened with MDB_NOSYNC or MDB_MAPASYNC: a returned
 * put is durable.  If a commit fails, the cache is marked failed and every
 * later call returns -EIO.
 */
#ifndef VMFERRY_CACHE_H
#define VMFERRY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "proto.h"

struct cache;

struct cache_put {
	uint64_t blkno;
	const uint8_t *hash; /* VMF_HASH_LEN bytes, borrowed */
	const void *buf;     /* plaintext, borrowed */
	size_t len;	     /* <= VMF_BLOCK_SIZE_MAX */
	/* A block the guest wrote: also record (gen, hash) in the "dirty"
	 * database, in the same transaction.  A dirty zero block has len 0
	 * and the zero hash: its stored contents are deleted instead. */
	bool dirty;
	uint64_t gen;
};

/* Open (creating if needed) the LMDB environment in dir with the given
 * map size (bytes; 0 picks a default large enough for the image).  Copies
 * data_key and cache_id.  Returns 0 and *ret, or -errno (-ENOSPC,
 * -EIO for an LMDB error, logged at debug level; a system error such as
 * -ENOENT or -EACCES passes through).
 *
 * The map is address space, not disk: data.mdb grows as it fills.  The
 * default is 1 TiB, shrunk (to 1 GiB at least) where the address space
 * will not allow that (ulimit -v, valgrind).  A sealed block uses whole
 * 4 KiB pages: 68 KiB for a 64 KiB block, 8 KiB for a 4 KiB one.
 *
 * The environment is bound to its identity (data key + cache id): one
 * left by another identity (keys_destroy(), then a new one from
 * keys_data_open()) is emptied here, as nothing in it can be opened. */
int cache_open(const char *dir, const uint8_t data_key[CRYPTO_KEY_LEN],
	       const uint8_t cache_id[CRYPTO_CACHE_ID_LEN], uint64_t map_size,
	       struct cache **ret);

/* Close; cleanses the key.  cache_free(NULL) is a no-op. */
void cache_free(struct cache *c);

/* Read block blkno into buf (len bytes, the block's exact length),
 * opening it with the expected content hash.  Returns 0, -ENOENT (not
 * cached), -EBADMSG (cached but does not authenticate against hash or
 * len: stale version or tampering; the caller refetches), -EINVAL (len >
 * VMF_BLOCK_SIZE_MAX), -EIO.  On error buf holds no unauthenticated
 * bytes.  Takes no lock; may wait for the disk (reads the file). */
int cache_get(struct cache *c, uint64_t blkno, const uint8_t *hash, void *buf,
	      size_t len);

/* Store n blocks in one write transaction: each is sealed straight into
 * the space LMDB reserves for it, then all are committed.  Durable (the
 * data, then the meta page synced) when any item is dirty; a batch of
 * fetched blocks only syncs its data, and a power cut may undo it (it
 * is fetched again; see "Durability" in cache.c).  Batch.  Blocks on
 * LMDB's writer lock and the disk: never call it holding a mutex.
 * Returns 0, -ENOSPC (the map or the file system is full: nothing of
 * the batch is stored and the cache stays usable, so the batch may be
 * retried once there is room), -EINVAL (an item longer than
 * VMF_BLOCK_SIZE_MAX), -EIO (cache now failed). */
int cache_put_batch(struct cache *c, const struct cache_put *items, size_t n);

/* Called for each dirty record by cache_dirty_walk(); a negative return
 * stops the walk and is returned. */
typedef int cache_dirty_fn(void *opaque, uint64_t blkno, uint64_t gen,
			   const uint8_t hash[VMF_HASH_LEN]);

/* Walk the dirty records (blocks written and not yet synced) in block
 * order, from one read transaction.  Returns their number, -EBADMSG if a
 * record does not authenticate, or -errno. */
int64_t cache_dirty_walk(struct cache *c, cache_dirty_fn *fn, void *opaque);

/* A read snapshot for write-back: one LMDB read transaction, so all it
 * reads is one point in time.  Used by one thread at a time (the
 * environment is MDB_NOTLS); long-lived by design, which keeps LMDB from
 * reusing pages freed meanwhile. */
struct cache_snap;
int cache_snap_begin(struct cache *c, struct cache_snap **ret);
void cache_snap_end(struct cache_snap *s);
/* As cache_dirty_walk() and cache_get(), within the snapshot. */
int64_t cache_snap_dirty_walk(struct cache_snap *s, cache_dirty_fn *fn,
			      void *opaque);
int cache_snap_get(struct cache_snap *s, uint64_t blkno, const uint8_t *hash,
		   void *buf, size_t len);

struct cache_clean {
	uint64_t blkno;
	uint64_t gen; /* the generation that was uploaded */
};

/* After a commit: in one write transaction, delete each dirty record
 * whose generation is still items[i].gen (ret_cleaned[i] says which;
 * blocks rewritten since stay dirty) and put the meta value
 * (meta_key, val) (the version the copy is now on).  Returns 0, -ENOSPC
 * or -EIO (cache failed). */
int cache_clean_dirty(struct cache *c, const struct cache_clean *items,
		      size_t n, bool *ret_cleaned, const char *meta_key,
		      const void *val, size_t val_len);

/* Delete blocks (evicted: clean, re-fetchable) in one transaction; an
 * absent one is no error.  0 or -errno. */
int cache_del_batch(struct cache *c, const uint64_t *blknos, size_t n);

/* Delete block blkno (no error if absent). */
int cache_del(struct cache *c, uint64_t blkno);

/* Fill bitmap (nblocks bits, bit i set = block i stored, in byte i / 8,
 * bit i % 8; caller-allocated (nblocks + 7) / 8 bytes, zeroed by this
 * call) from one read transaction.  Returns the number of blocks stored
 * with index < nblocks (whatever hash they were stored with), or -errno. */
int64_t cache_present(struct cache *c, uint64_t nblocks, uint8_t *bitmap);

/* Small sealed values (version bound to, server URL, ...).  get returns a
 * new buffer (caller frees) in *ret (NUL-terminated for convenience) or
 * -ENOENT.  key is 1 to 511 bytes and does not start with '.' (reserved
 * for the cache itself): else -EINVAL.  put is a durable write
 * transaction, like cache_put_batch(). */
int cache_meta_get(struct cache *c, const char *key, void **ret,
		   size_t *ret_len);
int cache_meta_put(struct cache *c, const char *key, const void *buf,
		   size_t len);
/* Delete a meta value (an absent one is no error).  0 or -errno. */
int cache_meta_del(struct cache *c, const char *key);

/* Bytes the environment occupies on disk (data.mdb's size). */
int cache_disk_usage(struct cache *c, uint64_t *ret);

/* Count the blocks written and not yet synced in the cache in dir,
 * without its key (a read-only look at the "dirty" database; any process,
 * also while the copy is mounted).  0 and *ret_dirty; -ENOENT if dir
 * holds no cache; -EIO for an LMDB error. */
int cache_peek_dirty(const char *dir, uint64_t *ret_dirty);

#endif
