/* SPDX-License-Identifier: MIT */
/* Block cache in LMDB.
 *
 * Owns the LMDB environment of one cache directory (DIR/data.mdb,
 * DIR/lock.mdb) and a copy of the data key.  Blocks and meta values are
 * stored sealed (crypto.h); callers only see plaintext that authenticated.
 * Sealing is done before a write transaction begins, so a writer holds
 * LMDB's lock only to copy values in and commit.  Opening is done inside
 * a short read transaction, straight from the map.
 *
 * The environment belongs to one identity (data key + cache id): meta
 * ".cache" holds a sealed marker.  A cache_open() whose key cannot open
 * the marker (keys_destroy() ran, and keys_data_open() made a new
 * identity) empties the environment, whose contents are unreadable now.
 *
 * Threading: any thread may call any function.  MDB_NOTLS: a read
 * transaction is not tied to its thread, and each one is short.  Write
 * transactions are serialised by LMDB's writer lock; calls that write
 * block while another thread commits.  The struct is immutable after
 * cache_open() except `failed`.
 *
 * Durability: never MDB_NOSYNC, MDB_MAPASYNC or MDB_WRITEMAP.  Every
 * commit syncs its data pages; MDB_NOMETASYNC leaves the meta page to
 * cache_commit(), which syncs it too (mdb_env_sync()) before a call
 * returns 0, except for a batch of fetched blocks only
 * (cache_put_batch()): those can be fetched again, so a power cut may
 * undo that last transaction (LMDB keeps its integrity; the next synced
 * commit makes it durable), and a cold read or hydration pays one disk
 * flush per batch instead of two.  A
 * failed commit other than "map full" or "file system full" (-ENOSPC,
 * nothing changed, see cache_commit()) marks the cache failed: its state
 * on disk is unknown, so it is never retried and every later call is
 * -EIO.  MDB_* codes are translated here and nowhere else.
 */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>

#include <lmdb.h>

#include "cleanup.h"
#include "log.h"

#include "cache.h"

/* A reservation of address space, not of disk: without MDB_WRITEMAP,
 * data.mdb grows only as pages are written.  A 64 KiB block takes 17
 * pages (68 KiB) sealed, so 1 TiB holds an image of about 900 GiB. */
#define CACHE_MAP_SIZE_DEFAULT (1ull << 40)
/* Where the default stops shrinking when the mapping fails. */
#define CACHE_MAP_SIZE_MIN (1ull << 30)
/* Named databases: blocks and meta, and room for more (dirty marks). */
#define CACHE_MAX_DBS 8
/* Read transactions at once (FUSE workers, hydrate, write-back). */
#define CACHE_MAX_READERS 512
/* Less free space than this after a short write: the file system is
 * full (see cache_fs_full()). */
#define CACHE_FULL_SLACK (1ull << 20)

/* Meta keys starting with '.' are this module's. */
#define CACHE_MARKER_KEY  ".cache"
#define CACHE_MARKER	  "vmferry-cache-v1"
#define CACHE_META_PREFIX "meta:"
/* LMDB's default maximum key size. */
#define CACHE_META_KEY_MAX 511
#define CACHE_META_AAD_MAX                                     \
	(sizeof(CACHE_META_PREFIX) - 1 + CRYPTO_CACHE_ID_LEN + \
	 CACHE_META_KEY_MAX)

struct cache {
	MDB_env *env;
	MDB_dbi blocks;	 /* set by cache_open() */
	MDB_dbi meta;	 /* set by cache_open() */
	MDB_dbi dirty;	 /* set by cache_open() */
	char *data_path; /* DIR/data.mdb */
	uint8_t key[CRYPTO_KEY_LEN];
	uint8_t id[CRYPTO_CACHE_ID_LEN];
	/* Set once a commit failed; seq_cst so that a call that starts
	 * after another returned -EIO sees it. */
	atomic_bool failed;
	uintptr_t map_start; /* LMDB's map of the data file: find_map() */
	size_t map_len;
	atomic_uint gets; /* relaxed: paces drop_map() on the read path */
	atomic_uint puts; /* relaxed: the same for cache_put_batch() */
};

static void cache_txn_abortp(MDB_txn **txn)
{
	if (*txn)
		mdb_txn_abort(*txn);
}

static void cache_cursor_closep(MDB_cursor **cur)
{
	if (*cur)
		mdb_cursor_close(*cur);
}

/* Translate an LMDB result: MDB_NOTFOUND -ENOENT, MDB_MAP_FULL -ENOSPC,
 * a system errno passes through, any other MDB_* code is -EIO. */
static int cache_err(int r, const char *what)
{
	if (r == MDB_NOTFOUND)
		return -ENOENT;
	log_debug(LOG_CAT_CACHE, "cache %s: %s", what, mdb_strerror(r));
	if (r == MDB_MAP_FULL)
		return -ENOSPC;
	return r > 0 ? -r : -EIO;
}

static int cache_check(struct cache *c)
{
	return atomic_load(&c->failed) ? -EIO : 0;
}

/* Begin a transaction; a failed cache refuses them all (-EIO). */
static int cache_txn_begin(struct cache *c, unsigned flags, MDB_txn **ret)
{
	int r = cache_check(c);

	if (r < 0)
		return r;
	r = mdb_txn_begin(c->env, NULL, flags, ret);
	return r ? cache_err(r, "begin transaction") : 0;
}

/* True if a commit that failed with r failed for a full file system:
 * ENOSPC, or the EIO LMDB makes of a short write, on a file system with
 * less room left than one of LMDB's write batches (MDB_COMMIT_PAGES, 64
 * pages) would need. */
static bool cache_fs_full(struct cache *c, int r)
{
	struct statvfs sv;
	int fd;

	if (r == ENOSPC)
		return true;
	if (r != EIO || mdb_env_get_fd(c->env, &fd) != 0 ||
	    fstatvfs(fd, &sv) < 0)
		return false;
	return (uint64_t)sv.f_bavail * sv.f_frsize < CACHE_FULL_SLACK;
}

/* Commit txn (freed either way).  A full map changed nothing and leaves
 * the cache usable.  So does a full file system, unless LMDB says
 * otherwise: without MDB_WRITEMAP, ENOSPC comes from writing the new
 * pages, before the meta page that would point at them, and the commit
 * is aborted with the previous state intact; had the meta page write
 * failed, LMDB marks the environment fatal and the next transaction
 * gets MDB_PANIC.  Any other failure may have left the disk in any
 * state LMDB's recovery allows, so the cache is failed for good. */
static int cache_commit_sync(struct cache *c, MDB_txn *txn, const char *what,
			     bool sync_meta)
{
	MDB_txn *probe = NULL;
	int r = mdb_txn_commit(txn);

	/* A failed sync leaves the disk's state unknown, like a failed
	 * commit. */
	if (r == 0 && sync_meta)
		r = mdb_env_sync(c->env, 1);
	if (r == 0 || r == MDB_MAP_FULL)
		return r ? cache_err(r, what) : 0;
	if (cache_fs_full(c, r) &&
	    mdb_txn_begin(c->env, NULL, MDB_RDONLY, &probe) == 0) {
		mdb_txn_abort(probe);
		log_debug(LOG_CAT_CACHE, "cache %s: commit: file system full",
			  what);
		return -ENOSPC;
	}
	atomic_store(&c->failed, true);
	log_debug(LOG_CAT_CACHE, "cache %s: commit: %s; cache failed", what,
		  mdb_strerror(r));
	return r == ENOSPC ? -ENOSPC : -EIO;
}

static int cache_commit(struct cache *c, MDB_txn *txn, const char *what)
{
	return cache_commit_sync(c, txn, what, true);
}

static size_t cache_meta_aad(struct cache *c, const char *key, uint8_t *aad)
{
	size_t plen = sizeof(CACHE_META_PREFIX) - 1, klen = strlen(key);

	memcpy(aad, CACHE_META_PREFIX, plen);
	memcpy(aad + plen, c->id, CRYPTO_CACHE_ID_LEN);
	memcpy(aad + plen + CRYPTO_CACHE_ID_LEN, key, klen);
	return plen + CRYPTO_CACHE_ID_LEN + klen;
}

/* Open a sealed meta value v of key into a new buffer (NUL-terminated). */
static int cache_meta_unseal(struct cache *c, const char *key, const MDB_val *v,
			     void **ret, size_t *ret_len)
{
	uint8_t aad[CACHE_META_AAD_MAX];
	size_t aad_len = cache_meta_aad(c, key, aad), len;
	_cleanup_free_ uint8_t *buf = NULL;
	int r;

	if (v->mv_size < CRYPTO_OVERHEAD)
		return -EBADMSG;
	len = v->mv_size - CRYPTO_OVERHEAD;
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	r = crypto_open(c->key, aad, aad_len, v->mv_data, v->mv_size, buf);
	if (r < 0)
		return r;
	buf[len] = '\0';
	*ret = steal_ptr(&buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

/* Seal (buf, len) as the value of meta key into a new buffer. */
static int cache_meta_seal(struct cache *c, const char *key, const void *buf,
			   size_t len, MDB_val *ret)
{
	uint8_t aad[CACHE_META_AAD_MAX];
	size_t aad_len = cache_meta_aad(c, key, aad);
	_cleanup_free_ uint8_t *sealed = NULL;
	int r;

	if (len > SIZE_MAX - CRYPTO_OVERHEAD)
		return -EINVAL;
	sealed = malloc(len + CRYPTO_OVERHEAD);
	if (!sealed)
		return -ENOMEM;
	r = crypto_seal(c->key, aad, aad_len, buf, len, sealed);
	if (r < 0)
		return r;
	ret->mv_size = len + CRYPTO_OVERHEAD;
	ret->mv_data = steal_ptr(&sealed);
	return 0;
}

/* The checks every meta call starts with: the cache works, and key is a
 * caller's key (LMDB's key size limit; '.' is reserved here). */
static int cache_meta_check(struct cache *c, const char *key)
{
	size_t len = strlen(key);

	if (cache_check(c) < 0)
		return -EIO;
	if (len == 0 || len > CACHE_META_KEY_MAX || key[0] == '.')
		return -EINVAL;
	return 0;
}

static MDB_val cache_str_val(const char *s)
{
	return (MDB_val){.mv_size = strlen(s), .mv_data = (void *)s};
}

/* Does the environment belong to c's identity?  Returns 1 (yes), 0 (it
 * is new: nothing stored yet), -EBADMSG (another identity's), -errno. */
static int cache_marker_check(struct cache *c, MDB_txn *txn)
{
	MDB_val k = cache_str_val(CACHE_MARKER_KEY), v;
	_cleanup_free_ void *val = NULL;
	MDB_stat st;
	size_t len;
	int r;

	r = mdb_get(txn, c->meta, &k, &v);
	if (r == MDB_NOTFOUND) {
		/* No marker: new, unless something was stored without one,
		 * which cache_open() never does. */
		r = mdb_stat(txn, c->blocks, &st);
		if (r)
			return cache_err(r, "stat blocks");
		return st.ms_entries == 0 ? 0 : -EBADMSG;
	}
	if (r)
		return cache_err(r, "get marker");
	r = cache_meta_unseal(c, CACHE_MARKER_KEY, &v, &val, &len);
	if (r == 0 && (len != strlen(CACHE_MARKER) ||
		       memcmp(val, CACHE_MARKER, len) != 0))
		r = -EBADMSG;
	return r < 0 ? r : 1;
}

/* Open the named databases and claim the environment for c's identity,
 * in one write transaction. */
static int cache_open_dbs(struct cache *c)
{
	_cleanup_(cache_txn_abortp) MDB_txn *txn = NULL;
	_cleanup_free_ void *marker = NULL;
	MDB_val k = cache_str_val(CACHE_MARKER_KEY), v;
	int r;

	/* Sealed before the transaction, like every write. */
	r = cache_meta_seal(c, CACHE_MARKER_KEY, CACHE_MARKER,
			    strlen(CACHE_MARKER), &v);
	if (r < 0)
		return r;
	marker = v.mv_data;
	r = cache_txn_begin(c, 0, &txn);
	if (r < 0)
		return r;
	r = mdb_dbi_open(txn, "blocks", MDB_CREATE, &c->blocks);
	if (r == 0)
		r = mdb_dbi_open(txn, "meta", MDB_CREATE, &c->meta);
	if (r == 0)
		r = mdb_dbi_open(txn, "dirty", MDB_CREATE, &c->dirty);
	if (r)
		return cache_err(r, "open databases");
	r = cache_marker_check(c, txn);
	if (r == -EBADMSG) {
		log_debug(LOG_CAT_CACHE,
			  "cache %s: sealed under another key: emptied",
			  c->data_path);
		r = mdb_drop(txn, c->blocks, 0);
		if (r == 0)
			r = mdb_drop(txn, c->meta, 0);
		if (r == 0)
			r = mdb_drop(txn, c->dirty, 0);
		r = r ? cache_err(r, "empty") : 0;
	}
	if (r < 0)
		return r;
	if (r == 0) {
		r = mdb_put(txn, c->meta, &k, &v, 0);
		if (r)
			return cache_err(r, "put marker");
	}
	/* Even with nothing written: an aborted transaction would close
	 * the database handles it opened. */
	return cache_commit(c, steal_ptr(&txn), "open");
}

/* Where LMDB mapped the data file (c->map_start, c->map_len): the
 * mapping of the file's inode at offset 0 in /proc/self/maps.  LMDB does
 * not say (mdb_env_info() gives the address only with MDB_FIXEDMAP),
 * and the map does not move while the environment is open.  Left 0 if
 * not found: values are then opened through the map. */
static void find_map(struct cache *c)
{
	_cleanup_fclose_ FILE *f = NULL;
	unsigned long long start, end, off, ino;
	unsigned maj, min;
	struct stat st;
	char line[512];
	int fd;

	c->map_start = c->map_len = 0;
	if (mdb_env_get_fd(c->env, &fd) != 0 || fstat(fd, &st) < 0)
		return;
	f = fopen("/proc/self/maps", "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &start, &end,
			   &off, &maj, &min, &ino) != 6 ||
		    ino != (unsigned long long)st.st_ino ||
		    makedev(maj, min) != st.st_dev || off != 0)
			continue;
		c->map_start = (uintptr_t)start;
		c->map_len = (size_t)(end - start);
		return;
	}
}

/* Unmap what the daemon has mapped of the data file.  Only B-tree pages
 * are read through the map, but each fault on one also maps the
 * kernel's "fault-around" neighbours, mostly block values: without this
 * the RSS grows with the copy (36 MiB per GiB of blocks).  The page
 * cache keeps them; the next lookup faults its few B-tree pages back. */
static void drop_map(struct cache *c)
{
	struct stat st;
	int fd;

	if (!c->map_start || mdb_env_get_fd(c->env, &fd) != 0 ||
	    fstat(fd, &st) < 0)
		return;
	(void)madvise((void *)c->map_start,
		      (size_t)st.st_size < c->map_len ? (size_t)st.st_size
						      : c->map_len,
		      MADV_DONTNEED); /* advice: nothing to do on failure */
}

/* Whether adding n to *ctr crosses a multiple of 1024: drop_map() once
 * per 1024 blocks read or stored (64 MiB at 64 KiB). */
static bool crosses_1024(atomic_uint *ctr, unsigned n)
{
	unsigned old = atomic_fetch_add_explicit(ctr, n, memory_order_relaxed);

	return old / 1024 != (old + n) / 1024;
}

/* Create and open c->env with one map size.  On failure c->env is
 * closed again (LMDB's rule) and the LMDB code is returned. */
static int cache_env_open(struct cache *c, const char *dir, uint64_t map_size)
{
	int dead = 0, r;

	r = mdb_env_create(&c->env);
	if (r) {
		c->env = NULL;
		return r;
	}
	r = mdb_env_set_maxdbs(c->env, CACHE_MAX_DBS);
	if (r == 0)
		r = mdb_env_set_maxreaders(c->env, CACHE_MAX_READERS);
	if (r == 0)
		r = mdb_env_set_mapsize(c->env, (size_t)map_size);
	if (r == 0)
		r = mdb_env_open(c->env, dir, MDB_NOTLS | MDB_NOMETASYNC, 0600);
	/* Free reader slots that crashed processes left behind: they
	 * would pin old pages and make the file grow. */
	if (r == 0)
		r = mdb_reader_check(c->env, &dead);
	if (r) {
		mdb_env_close(c->env);
		c->env = NULL;
		return r;
	}
	log_debug(LOG_CAT_CACHE,
		  "cache %s: map %" PRIu64 " MiB, %d stale readers cleared",
		  dir, map_size >> 20, dead);
	find_map(c);
	return 0;
}

int cache_open(const char *dir, const uint8_t data_key[CRYPTO_KEY_LEN],
	       const uint8_t cache_id[CRYPTO_CACHE_ID_LEN], uint64_t map_size,
	       struct cache **ret)
{
	uint64_t size = map_size ? map_size : CACHE_MAP_SIZE_DEFAULT;
	struct cache *c;
	int r;

	if (size > SIZE_MAX)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memcpy(c->key, data_key, CRYPTO_KEY_LEN);
	memcpy(c->id, cache_id, CRYPTO_CACHE_ID_LEN);
	atomic_init(&c->failed, false);
	if (asprintf(&c->data_path, "%s/data.mdb", dir) < 0) {
		c->data_path = NULL;
		r = -ENOMEM;
		goto fail;
	}
	/* The default shrinks until the address space allows the mapping
	 * (ulimit -v; valgrind maps 16 GiB at most, and fails larger maps
	 * with EINVAL). */
	r = cache_env_open(c, dir, size);
	while ((r == ENOMEM || r == EINVAL) && !map_size &&
	       size > CACHE_MAP_SIZE_MIN) {
		size /= 4;
		r = cache_env_open(c, dir, size);
	}
	if (r) {
		r = cache_err(r, dir);
		goto fail;
	}
	r = cache_open_dbs(c);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	cache_free(c);
	return r;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	if (c->env)
		mdb_env_close(c->env);
	crypto_cleanse(c->key, sizeof(c->key));
	free(c->data_path);
	free(c);
}

static MDB_val cache_blkno_val(uint64_t *be, uint64_t blkno)
{
	*be = htobe64(blkno);
	return (MDB_val){.mv_size = sizeof(*be), .mv_data = be};
}

/* Open the sealed value v into buf (room for v->mv_size -
 * CRYPTO_OVERHEAD bytes).  A value in the map (any value of a read
 * transaction) is read from the file with preadv(), its ciphertext
 * straight into buf, and opened in place: its pages are never mapped
 * into the daemon, whose RSS would otherwise grow by every block read
 * (a gigabyte for a copy read whole), and dropping them again after
 * each block (MADV_DONTNEED) cost every later read of it 17 page
 * faults.  A value outside the map (a write transaction's own) is
 * opened from memory. */
static int cache_open_sealed(struct cache *c, const MDB_val *v,
			     const uint8_t *aad, void *buf)
{
	uint8_t nonce[CRYPTO_NONCE_LEN], tag[CRYPTO_TAG_LEN];
	size_t len = v->mv_size - CRYPTO_OVERHEAD;
	struct iovec iov[3] = {
	    {nonce, sizeof(nonce)}, {buf, len}, {tag, sizeof(tag)}};
	uintptr_t at = (uintptr_t)v->mv_data, map = c->map_start;
	ssize_t n;
	int fd;

	if (v->mv_size < CRYPTO_OVERHEAD)
		return -EBADMSG;
	if (mdb_env_get_fd(c->env, &fd) != 0)
		return -EIO;
	if (!map || at < map || at - map > c->map_len ||
	    c->map_len - (at - map) < v->mv_size)
		return crypto_open(c->key, aad, CRYPTO_BLOCK_AAD_LEN,
				   v->mv_data, v->mv_size, buf);
	n = preadv(fd, iov, 3, (off_t)(at - map));
	if (n < 0 || (size_t)n != v->mv_size) {
		log_debug(LOG_CAT_CACHE, "cache read: %zd of %zu bytes: %m", n,
			  v->mv_size);
		return -EIO;
	}
	return crypto_open_parts(c->key, aad, CRYPTO_BLOCK_AAD_LEN, nonce, tag,
				 buf, len);
}

/* Get and open block blkno within txn. */
static int cache_get_txn(struct cache *c, MDB_txn *txn, uint64_t blkno,
			 const uint8_t *hash, void *buf, size_t len)
{
	uint8_t aad[CRYPTO_BLOCK_AAD_LEN];
	uint64_t be;
	MDB_val k = cache_blkno_val(&be, blkno), v;
	int r;

	if (len > VMF_BLOCK_SIZE_MAX)
		return -EINVAL;
	crypto_block_aad(c->id, blkno, hash, aad);
	r = mdb_get(txn, c->blocks, &k, &v);
	if (r)
		return cache_err(r, "get");
	if (v.mv_size != len + CRYPTO_OVERHEAD) {
		log_debug(LOG_CAT_CACHE,
			  "cache block %" PRIu64 ": %zu bytes stored, %zu "
			  "expected",
			  blkno, v.mv_size, len + CRYPTO_OVERHEAD);
		return -EBADMSG;
	}
	/* v points into the map, valid until the transaction ends. */
	r = cache_open_sealed(c, &v, aad, buf);
	if (crosses_1024(&c->gets, 1))
		drop_map(c);
	return r;
}

int cache_get(struct cache *c, uint64_t blkno, const uint8_t *hash, void *buf,
	      size_t len)
{
	_cleanup_(cache_txn_abortp) MDB_txn *txn = NULL;
	int r;

	r = cache_txn_begin(c, MDB_RDONLY, &txn);
	if (r < 0)
		return r;
	return cache_get_txn(c, txn, blkno, hash, buf, len);
}

/* A dirty record: generation (big-endian) and hash, sealed like a meta
 * value under "dirty:<blkno>" so it cannot be moved to another block. */
#define CACHE_DIRTY_LEN (8 + VMF_HASH_LEN)

static void cache_dirty_key(uint64_t blkno, char *key, size_t len)
{
	snprintf(key, len, "dirty:%" PRIu64, blkno);
}

static int cache_dirty_seal(struct cache *c, const struct cache_put *it,
			    MDB_val *ret)
{
	uint8_t rec[CACHE_DIRTY_LEN];
	uint64_t be = htobe64(it->gen);
	char key[40];

	memcpy(rec, &be, 8);
	memcpy(rec + 8, it->hash, VMF_HASH_LEN);
	cache_dirty_key(it->blkno, key, sizeof(key));
	return cache_meta_seal(c, key, rec, sizeof(rec), ret);
}

static int64_t cache_dirty_walk_txn(struct cache *c, MDB_txn *txn,
				    cache_dirty_fn *fn, void *opaque)
{
	_cleanup_(cache_cursor_closep) MDB_cursor *cur = NULL;
	MDB_val k, v;
	int64_t count = 0;
	int r;

	r = mdb_cursor_open(txn, c->dirty, &cur);
	if (r) {
		cur = NULL;
		return cache_err(r, "cursor");
	}
	for (r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0;
	     r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		_cleanup_free_ void *rec = NULL;
		uint64_t be, blkno, gen;
		size_t len;
		char key[40];
		int q;

		if (k.mv_size != sizeof(be))
			return -EBADMSG;
		memcpy(&be, k.mv_data, sizeof(be));
		blkno = be64toh(be);
		cache_dirty_key(blkno, key, sizeof(key));
		q = cache_meta_unseal(c, key, &v, &rec, &len);
		if (q < 0)
			return q;
		if (len != CACHE_DIRTY_LEN)
			return -EBADMSG;
		memcpy(&be, rec, 8);
		gen = be64toh(be);
		q = fn(opaque, blkno, gen, (const uint8_t *)rec + 8);
		if (q < 0)
			return q;
		count++;
	}
	if (r != MDB_NOTFOUND)
		return cache_err(r, "walk dirty");
	return count;
}

int64_t cache_dirty_walk(struct cache *c, cache_dirty_fn *fn, void *opaque)
{
	_cleanup_(cache_txn_abortp) MDB_txn *txn = NULL;
	int r;

	r = cache_txn_begin(c, MDB_RDONLY, &txn);
	if (r < 0)
		return r;
	return cache_dirty_walk_txn(c, txn, fn, opaque);
}

struct cache_snap {
	struct cache *c;
	MDB_txn *txn;
};

int cache_snap_begin(struct cache *c, struct cache_snap **ret)
{
	struct cache_snap *s;
	int r;

	r = cache_check(c);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->c = c;
	r = cache_txn_begin(c, MDB_RDONLY, &s->txn);
	if (r < 0) {
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void cache_snap_end(struct cache_snap *s)
{
	if (!s)
		return;
	mdb_txn_abort(s->txn);
	free(s);
}

int64_t cache_snap_dirty_walk(struct cache_snap *s, cache_dirty_fn *fn,
			      void *opaque)
{
	return cache_dirty_walk_txn(s->c, s->txn, fn, opaque);
}

int cache_snap_get(struct cache_snap *s, uint64_t blkno, const uint8_t *hash,
		   void *buf, size_t len)
{
	return cache_get_txn(s->c, s->txn, blkno, hash, buf, len);
}

int cache_clean_dirty(struct cache *c, const struct cache_clean *items,
		      size_t n, bool *ret_cleaned, const char *meta_key,
		      const void *val, size_t val_len)
{
	_cleanup_(cache_txn_abortp) MDB_txn *txn = NULL;
	_cleanup_free_ void *sealed = NULL;
	MDB_val mk, mv;
	int r;

	r = cache_meta_check(c, meta_key);
	if (r < 0)
		return r;
	r = cache_meta_seal(c, meta_key, val, val_len, &mv);
	if (r < 0)
		return r;
	sealed = mv.mv_data;
	mk = cache_str_val(meta_key);
	r = cache_txn_begin(c, 0, &txn);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		uint64_t be, gen = 0;
		MDB_val k = cache_blkno_val(&be, items[i].blkno), v;
		_cleanup_free_ void *rec = NULL;
		size_t len;
		char key[40];

		ret_cleaned[i] = false;
		r = mdb_get(txn, c->dirty, &k, &v);
		if (r == MDB_NOTFOUND)
			continue;
		if (r)
			return cache_err(r, "get dirty");
		cache_dirty_key(items[i].blkno, key, sizeof(key));
		r = cache_meta_unseal(c, key, &v, &rec, &len);
		if (r < 0)
			return r;
		if (len != CACHE_DIRTY_LEN)
			return -EBADMSG;
		memcpy(&be, rec, 8);
		gen = be64toh(be);
		/* Rewritten since the snapshot: stays dirty. */
		if (gen != items[i].gen)
			continue;
		k = cache_blkno_val(&be, items[i].blkno);
		r = mdb_del(txn, c->dirty, &k, NULL);
		if (r)
			return cache_err(r, "clean dirty");
		ret_cleaned[i] = true;
	}
	r = mdb_put(txn, c->meta, &mk, &mv, 0);
	if (r)
		return cache_err(r, "put meta");
	return cache_commit(c, steal_ptr(&txn), "clean");
}

int cache_put_batch(struct cache *c, const struct cache_put *items, size_t n)
{
	_cleanup_(cache_txn_abortp) MDB_txn *txn = NULL;
	MDB_val *recs = NULL;
	uint8_t aad[CRYPTO_BLOCK_AAD_LEN];
	bool any_dirty = false;
	int r;

	r = cache_check(c);
	if (r < 0 || n == 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		assert(items[i].hash && (items[i].buf || !items[i].len));
		any_dirty |= items[i].dirty;
		if (items[i].len > VMF_BLOCK_SIZE_MAX)
			return -EINVAL;
	}
	recs = calloc(n, sizeof(*recs));
	if (!recs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!items[i].dirty)
			continue;
		r = cache_dirty_seal(c, &items[i], &recs[i]);
		if (r < 0)
			goto out;
	}
	r = cache_txn_begin(c, 0, &txn);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint64_t be;
		MDB_val k = cache_blkno_val(&be, items[i].blkno);
		MDB_val v = {.mv_size = items[i].len + CRYPTO_OVERHEAD};

		/* A failed put (map full) spoils the transaction: it is
		 * aborted, and nothing of the batch is stored.  Blocks are
		 * sealed straight into the space LMDB reserves for them
		 * (its dirty page), not into a buffer copied from. */
		if (items[i].dirty && items[i].len == 0) {
			r = mdb_del(txn, c->blocks, &k, NULL);
			r = r == MDB_NOTFOUND ? 0 : r;
		} else {
			r = mdb_put(txn, c->blocks, &k, &v, MDB_RESERVE);
		}
		if (r == 0 && items[i].dirty)
			r = mdb_put(txn, c->dirty, &k, &recs[i], 0);
		if (r) {
			r = cache_err(r, "put");
			goto out;
		}
		if (items[i].dirty && items[i].len == 0)
			continue;
		crypto_block_aad(c->id, items[i].blkno, items[i].hash, aad);
		r = crypto_seal(c->key, aad, sizeof(aad), items[i].buf,
				items[i].len, v.mv_data);
		if (r < 0)
			goto out;
	}
	r = cache_commit_sync(c, steal_ptr(&txn), "put", any_dirty);
	if (crosses_1024(&c->puts, (unsigned)n))
		drop_map(c); /* the puts' B-tree lookups mapped pages */
out:
	for (size_t i = 0; i < n; i++)
		free(recs[i].mv_data);
	free(recs);
	return r;
}

int cache_del(struct cache *c, uint64_t blkno)
{
	_cleanup_(cache_txn_abortp) MDB_txn *txn = NULL;
	uint64_t be;
	MDB_val k = cache_blkno_val(&be, blkno);
	int r;

	r = cache_check(c);
	if (r < 0)
		return r;
	r = cache_txn_begin(c, 0, &txn);
	if (r < 0)
		return r;
	r = mdb_del(txn, c->blocks, &k, NULL);
	if (r == MDB_NOTFOUND)
		return 0; /* txn aborted: nothing to commit */
	if (r)
		return cache_err(r, "delete");
	return cache_commit(c, steal_ptr(&txn), "delete");
}

int cache_del_batch(struct cache *c, const uint64_t *blknos, size_t n)
{
	_cleanup_(cache_txn_abortp) MDB_txn *txn = NULL;
	int r;

	r = cache_check(c);
	if (r < 0)
		return r;
	if (n == 0)
		return 0;
	r = cache_txn_begin(c, 0, &txn);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		uint64_t be;
		MDB_val k = cache_blkno_val(&be, blknos[i]);

		r = mdb_del(txn, c->blocks, &k, NULL);
		if (r && r != MDB_NOTFOUND)
			return cache_err(r, "delete");
	}
	return cache_commit(c, steal_ptr(&txn), "delete");
}

int64_t cache_present(struct cache *c, uint64_t nblocks, uint8_t *bitmap)
{
	/* Declared in this order so the cursor is closed before the
	 * transaction ends (cleanups run in reverse). */
	_cleanup_(cache_txn_abortp) MDB_txn *txn = NULL;
	_cleanup_(cache_cursor_closep) MDB_cursor *cur = NULL;
	MDB_val k, v;
	int64_t count = 0;
	int r;

	r = cache_check(c);
	if (r < 0)
		return r;
	memset(bitmap, 0, nblocks / 8 + (nblocks % 8 != 0));
	r = cache_txn_begin(c, MDB_RDONLY, &txn);
	if (r < 0)
		return r;
	r = mdb_cursor_open(txn, c->blocks, &cur);
	if (r) {
		cur = NULL;
		return cache_err(r, "cursor");
	}
	/* Keys are big-endian, so the walk is in block order and stops at
	 * the first index past the end. */
	for (r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0;
	     r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t be, blkno;

		if (k.mv_size != sizeof(be))
			continue; /* not a block key: never written here */
		memcpy(&be, k.mv_data, sizeof(be));
		blkno = be64toh(be);
		if (blkno >= nblocks)
			break;
		bitmap[blkno / 8] |= (uint8_t)(1u << (blkno % 8));
		count++;
	}
	if (r && r != MDB_NOTFOUND)
		return cache_err(r, "walk blocks");
	return count;
}

int cache_meta_get(struct cache *c, const char *key, void **ret,
		   size_t *ret_len)
{
	_cleanup_(cache_txn_abortp) MDB_txn *txn = NULL;
	MDB_val k = cache_str_val(key), v;
	int r;

	r = cache_meta_check(c, key);
	if (r == 0)
		r = cache_txn_begin(c, MDB_RDONLY, &txn);
	if (r < 0)
		return r;
	r = mdb_get(txn, c->meta, &k, &v);
	if (r)
		return cache_err(r, "meta get");
	return cache_meta_unseal(c, key, &v, ret, ret_len);
}

int cache_meta_put(struct cache *c, const char *key, const void *buf,
		   size_t len)
{
	_cleanup_(cache_txn_abortp) MDB_txn *txn = NULL;
	_cleanup_free_ void *sealed = NULL;
	MDB_val k = cache_str_val(key), v;
	int r;

	r = cache_meta_check(c, key);
	if (r == 0)
		r = cache_meta_seal(c, key, buf, len, &v);
	if (r < 0)
		return r;
	sealed = v.mv_data;
	r = cache_txn_begin(c, 0, &txn);
	if (r < 0)
		return r;
	r = mdb_put(txn, c->meta, &k, &v, 0);
	if (r)
		return cache_err(r, "meta put");
	return cache_commit(c, steal_ptr(&txn), "meta put");
}

int cache_meta_del(struct cache *c, const char *key)
{
	_cleanup_(cache_txn_abortp) MDB_txn *txn = NULL;
	MDB_val k = cache_str_val(key);
	int r;

	r = cache_meta_check(c, key);
	if (r == 0)
		r = cache_txn_begin(c, 0, &txn);
	if (r < 0)
		return r;
	r = mdb_del(txn, c->meta, &k, NULL);
	if (r && r != MDB_NOTFOUND)
		return cache_err(r, "meta del");
	return cache_commit(c, steal_ptr(&txn), "meta del");
}

int cache_disk_usage(struct cache *c, uint64_t *ret)
{
	struct stat st;
	int r;

	r = cache_check(c);
	if (r < 0)
		return r;
	if (stat(c->data_path, &st) < 0)
		return -errno;
	*ret = (uint64_t)st.st_blocks * 512;
	return 0;
}

int cache_peek_dirty(const char *dir, uint64_t *ret_dirty)
{
	struct stat fst;
	char path[4096];
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_stat st;
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", dir) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	if (stat(path, &fst) < 0)
		return -errno;
	r = mdb_env_create(&env);
	if (r == 0)
		r = mdb_env_set_maxdbs(env, CACHE_MAX_DBS);
	/* Map only what the file holds (LMDB raises a smaller size to
	 * that): the 1 TiB a mount reserves may not fit this process's
	 * address space (a sanitizer's, or ulimit -v). */
	if (r == 0)
		r = mdb_env_set_mapsize(env, (size_t)fst.st_size + 4096);
	if (r == 0)
		r = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600);
	if (r == 0)
		r = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (r == 0) {
		r = mdb_dbi_open(txn, "dirty", 0, &dbi);
		if (r == 0)
			r = mdb_stat(txn, dbi, &st);
		if (r == 0)
			*ret_dirty = st.ms_entries;
		else if (r == MDB_NOTFOUND) {
			*ret_dirty = 0;
			r = 0;
		}
		mdb_txn_abort(txn);
	}
	if (r)
		log_debug(LOG_CAT_CACHE, "peeking at %s: %s", dir,
			  mdb_strerror(r));
	mdb_env_close(env);
	return r ? -EIO : 0;
}
