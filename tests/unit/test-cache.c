/* SPDX-License-Identifier: MIT */
/* Unit tests for fusefs/cache.c, and a throughput diagnostic. */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "util.h"

#include "cache.h"
#include "tap.h"

#define BLK VMF_BLOCK_SIZE_DEFAULT

struct fixture {
	char *dir;
	uint8_t key[CRYPTO_KEY_LEN];
	uint8_t id[CRYPTO_CACHE_ID_LEN];
	uint64_t map_size;
	struct cache *c;
};

/* Tests stop at a failed open: every later call would dereference it. */
static bool fixture_open(struct fixture *f)
{
	int r = cache_open(f->dir, f->key, f->id, f->map_size, &f->c);

	if (!check_int(r, ==, 0))
		f->c = NULL;
	return f->c != NULL;
}

/* A fresh directory, key and cache id, and the cache open on them. */
static bool fixture_init(struct fixture *f, uint64_t map_size)
{
	f->dir = strdup("/tmp/vmferry-test-cache.XXXXXX");
	if (!f->dir || !mkdtemp(f->dir))
		abort();
	check(crypto_random(f->key, sizeof(f->key)) == 0);
	check(crypto_random(f->id, sizeof(f->id)) == 0);
	f->map_size = map_size;
	if (fixture_open(f))
		return true;
	check(rm_rf(f->dir) == 0);
	free(f->dir);
	return false;
}

static bool fixture_reopen(struct fixture *f)
{
	cache_free(f->c);
	return fixture_open(f);
}

static void fixture_fini(struct fixture *f)
{
	cache_free(f->c);
	check(rm_rf(f->dir) == 0);
	free(f->dir);
}

/* Block i's content: bytes no other block has; and its hash. */
static void block_fill(uint64_t i, uint8_t *buf, size_t len,
		       uint8_t hash[VMF_HASH_LEN])
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;

	for (size_t j = 0; j < len; j++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[j] = (uint8_t)x;
	}
	hash_sha256(buf, len, hash);
}

/* Put blocks first..first+n-1 of length len in one batch. */
static int put_blocks(struct cache *c, uint64_t first, size_t n, size_t len)
{
	_cleanup_free_ uint8_t *bufs = malloc(n * len + 1);
	_cleanup_free_ uint8_t *hashes = malloc(n * VMF_HASH_LEN);
	_cleanup_free_ struct cache_put *items = calloc(n + 1, sizeof(*items));

	if (!bufs || !hashes || !items)
		abort();
	for (size_t i = 0; i < n; i++) {
		block_fill(first + i, bufs + i * len, len,
			   hashes + i * VMF_HASH_LEN);
		items[i] = (struct cache_put){.blkno = first + i,
					      .hash = hashes + i * VMF_HASH_LEN,
					      .buf = bufs + i * len,
					      .len = len};
	}
	return cache_put_batch(c, items, n);
}

/* Get block i and compare it with what put_blocks() stored; returns
 * cache_get()'s result. */
static int get_block(struct cache *c, uint64_t i, size_t len)
{
	_cleanup_free_ uint8_t *want = malloc(len + 1);
	_cleanup_free_ uint8_t *got = malloc(len + 1);
	uint8_t hash[VMF_HASH_LEN];
	int r;

	if (!want || !got)
		abort();
	memset(got, 0, len);
	block_fill(i, want, len, hash);
	r = cache_get(c, i, hash, got, len);
	if (r == 0 && memcmp(got, want, len) != 0)
		r = -EILSEQ; /* never expected: fails every caller's check */
	if (r == -EBADMSG && !hash_is_zero_buf(got, len))
		r = -EILSEQ; /* unauthenticated bytes left in buf */
	return r;
}

static void test_roundtrip(void)
{
	struct fixture f;
	int r;

	if (!fixture_init(&f, 0))
		return;
	r = put_blocks(f.c, 10, 64, BLK);
	check_int(r, ==, 0);
	for (uint64_t i = 10; i < 74; i++) {
		r = get_block(f.c, i, BLK);
		check_int(r, ==, 0);
	}
	if (!fixture_reopen(&f))
		goto out;
	for (uint64_t i = 10; i < 74; i++) {
		r = get_block(f.c, i, BLK);
		check_int(r, ==, 0);
	}
	/* Overwriting replaces. */
	r = put_blocks(f.c, 11, 1, 4096);
	check_int(r, ==, 0);
	r = get_block(f.c, 11, 4096);
	check_int(r, ==, 0);
out:
	fixture_fini(&f);
}

static void test_short_block(void)
{
	struct fixture f;
	int r;

	if (!fixture_init(&f, 0))
		return;
	r = put_blocks(f.c, 3, 1, 1000);
	check_int(r, ==, 0);
	r = get_block(f.c, 3, 1000);
	check_int(r, ==, 0);
	/* Any other length is not this block. */
	r = get_block(f.c, 3, BLK);
	check_int(r, ==, -EBADMSG);
	r = get_block(f.c, 3, 999);
	check_int(r, ==, -EBADMSG);
	fixture_fini(&f);
}

static void test_wrong_hash(void)
{
	struct fixture f;
	_cleanup_free_ uint8_t *buf = malloc(BLK);
	uint8_t hash[VMF_HASH_LEN];
	int r;

	if (!fixture_init(&f, 0))
		return;
	r = put_blocks(f.c, 1, 2, BLK);
	check_int(r, ==, 0);
	/* Block 1 asked for with block 2's hash: a stale version. */
	block_fill(2, buf, BLK, hash);
	r = cache_get(f.c, 1, hash, buf, BLK);
	check_int(r, ==, -EBADMSG);
	check(hash_is_zero_buf(buf, BLK));
	r = get_block(f.c, 1, BLK);
	check_int(r, ==, 0);
	fixture_fini(&f);
}

/* With the cache closed, copy block from's sealed value onto block to's
 * key, straight through LMDB.  Returns 0 or an LMDB error. */
static int raw_copy(const char *dir, uint64_t from, uint64_t to)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	uint64_t kf = htobe64(from), kt = htobe64(to);
	MDB_val k = {sizeof(kf), &kf}, v, copy = {0, NULL};
	int r;

	r = mdb_env_create(&env);
	if (r)
		return r;
	/* A small map: the cache's own may not fit (valgrind). */
	r = mdb_env_set_maxdbs(env, 8);
	if (r == 0)
		r = mdb_env_set_mapsize(env, 64 << 20);
	if (r == 0)
		r = mdb_env_open(env, dir, 0, 0600);
	if (r == 0)
		r = mdb_txn_begin(env, NULL, 0, &txn);
	if (r == 0)
		r = mdb_dbi_open(txn, "blocks", 0, &dbi);
	if (r == 0)
		r = mdb_get(txn, dbi, &k, &v);
	if (r == 0) {
		copy.mv_size = v.mv_size;
		copy.mv_data = malloc(v.mv_size);
		memcpy(copy.mv_data, v.mv_data, v.mv_size);
		k.mv_data = &kt;
		r = mdb_put(txn, dbi, &k, &copy, 0);
	}
	if (r == 0)
		r = mdb_txn_commit(txn);
	else if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	free(copy.mv_data);
	return r;
}

static void test_swapped(void)
{
	struct fixture f;
	uint8_t buf[4096], hash1[VMF_HASH_LEN];
	int r;

	if (!fixture_init(&f, 0))
		return;
	r = put_blocks(f.c, 1, 2, sizeof(buf));
	check_int(r, ==, 0);
	cache_free(f.c);
	f.c = NULL;
	r = raw_copy(f.dir, 1, 2);
	check_int(r, ==, 0);
	if (!fixture_open(&f))
		goto out;
	/* Block 2 now holds block 1's sealed bytes: neither its own hash
	 * nor block 1's opens it, since the index is bound in too. */
	r = get_block(f.c, 2, sizeof(buf));
	check_int(r, ==, -EBADMSG);
	block_fill(1, buf, sizeof(buf), hash1);
	r = cache_get(f.c, 2, hash1, buf, sizeof(buf));
	check_int(r, ==, -EBADMSG);
	r = get_block(f.c, 1, sizeof(buf));
	check_int(r, ==, 0);
out:
	fixture_fini(&f);
}

static void test_absent(void)
{
	struct fixture f;
	int r;

	if (!fixture_init(&f, 0))
		return;
	r = get_block(f.c, 0, BLK);
	check_int(r, ==, -ENOENT);
	r = cache_del(f.c, 0);
	check_int(r, ==, 0);
	r = put_blocks(f.c, 0, 2, BLK);
	check_int(r, ==, 0);
	r = cache_del(f.c, 0);
	check_int(r, ==, 0);
	r = get_block(f.c, 0, BLK);
	check_int(r, ==, -ENOENT);
	r = get_block(f.c, 1, BLK);
	check_int(r, ==, 0);
	fixture_fini(&f);
}

static void test_present(void)
{
	static const uint64_t stored[] = {0, 3, 7, 8, 100, 1000, 1ull << 40};
	struct fixture f;
	uint8_t bitmap[16];
	int64_t n;
	int r;

	if (!fixture_init(&f, 0))
		return;
	for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++) {
		r = put_blocks(f.c, stored[i], 1, 512);
		check_int(r, ==, 0);
	}
	memset(bitmap, 0xff, sizeof(bitmap));
	n = cache_present(f.c, 101, bitmap);
	check_int(n, ==, 5);
	for (uint64_t i = 0; i < 101; i++) {
		bool want = i == 0 || i == 3 || i == 7 || i == 8 || i == 100;

		if (!check(!!(bitmap[i / 8] & (1u << (i % 8))) == want))
			printf("# block %d\n", (int)i);
	}
	check(bitmap[12] == 0x10); /* bits past nblocks stay clear */
	check(bitmap[13] == 0xff); /* bytes past the bitmap untouched */
	n = cache_present(f.c, 8, bitmap);
	check_int(n, ==, 3);
	check(bitmap[0] == 0x89);
	n = cache_present(f.c, 0, bitmap);
	check_int(n, ==, 0);
	fixture_fini(&f);
}

static void test_meta(void)
{
	struct fixture f;
	_cleanup_free_ void *a = NULL, *b = NULL, *e = NULL;
	void *none = NULL;
	size_t len = 0;
	int r;

	if (!fixture_init(&f, 0))
		return;
	r = cache_meta_get(f.c, "version", &none, &len);
	check_int(r, ==, -ENOENT);
	r = cache_meta_put(f.c, "version", "6", 1);
	check_int(r, ==, 0);
	r = cache_meta_put(f.c, "version", "17", 2);
	check_int(r, ==, 0);
	r = cache_meta_put(f.c, "empty", "", 0);
	check_int(r, ==, 0);
	if (!fixture_reopen(&f))
		goto out;
	r = cache_meta_get(f.c, "version", &a, &len);
	check_int(r, ==, 0);
	check_uint(len, ==, 2);
	check(a && strcmp(a, "17") == 0);
	r = cache_meta_get(f.c, "empty", &e, &len);
	check_int(r, ==, 0);
	check_uint(len, ==, 0);
	check(e && *(char *)e == '\0');
	/* Keys starting with '.' are the cache's own; "" is no key. */
	r = cache_meta_put(f.c, ".cache", "x", 1);
	check_int(r, ==, -EINVAL);
	r = cache_meta_get(f.c, ".cache", &none, &len);
	check_int(r, ==, -EINVAL);
	r = cache_meta_put(f.c, "", "x", 1);
	check_int(r, ==, -EINVAL);
	/* A meta value does not answer for another key. */
	r = cache_meta_put(f.c, "url", "https://example/x", 17);
	check_int(r, ==, 0);
	r = cache_meta_get(f.c, "url", &b, NULL);
	check_int(r, ==, 0);
	check(b && strcmp(b, "https://example/x") == 0);
	check(none == NULL);
out:
	fixture_fini(&f);
}

/* A 64-byte pattern written many times must not be in data.mdb. */
static void test_no_plaintext(void)
{
	static const char pattern[] =
	    "vmferry plaintext marker 0123456789 abcdefghijklmnopqrstuvwxyz!!";
	struct fixture f;
	_cleanup_free_ char *path = NULL, *file = NULL;
	_cleanup_free_ uint8_t *buf = malloc(BLK);
	uint8_t hash[VMF_HASH_LEN];
	struct cache_put put = {
	    .blkno = 9, .hash = hash, .buf = buf, .len = BLK};
	size_t len = 0;
	int r;

	static_assert(sizeof(pattern) - 1 == 64, "64-byte pattern");
	if (!fixture_init(&f, 0))
		return;
	for (size_t off = 0; off < BLK; off += 64)
		memcpy(buf + off, pattern, 64);
	hash_sha256(buf, BLK, hash);
	r = cache_put_batch(f.c, &put, 1);
	check_int(r, ==, 0);
	r = cache_meta_put(f.c, "m", pattern, 64);
	check_int(r, ==, 0);
	cache_free(f.c);
	f.c = NULL;
	if (asprintf(&path, "%s/data.mdb", f.dir) < 0)
		abort();
	r = read_file(path, 64 << 20, &file, &len);
	check_int(r, ==, 0);
	check_uint(len, >, BLK);
	check(file && !memmem(file, len, pattern, 64));
	check(file && !memmem(file, len, pattern + 16, 32));
	fixture_fini(&f);
}

/* The default map is address space only: the file is allocated as it
 * fills. */
static void test_sparse(void)
{
	struct fixture f;
	_cleanup_free_ char *path = NULL;
	uint64_t used = 0;
	struct stat st;
	int r;

	if (!fixture_init(&f, 0))
		return;
	if (asprintf(&path, "%s/data.mdb", f.dir) < 0)
		abort();
	r = stat(path, &st);
	check_int(r, ==, 0);
	check_int(st.st_size, <, 1 << 20);
	r = cache_disk_usage(f.c, &used);
	check_int(r, ==, 0);
	check_uint(used, <, 1 << 20);
	r = put_blocks(f.c, 0, 256, BLK); /* 16 MiB */
	check_int(r, ==, 0);
	r = cache_disk_usage(f.c, &used);
	check_int(r, ==, 0);
	check_uint(used, >=, 256 * BLK);
	check_uint(used, <, 256 * (BLK + 8192) + (1 << 20));
	printf("# 256 blocks of 64 KiB: %.1f MiB on disk\n",
	       (double)used / (1 << 20));
	fixture_fini(&f);
}

/* A map too small for a batch: -ENOSPC, nothing of that batch stored,
 * and the cache keeps serving (and, once space is freed, storing). */
static void test_map_full(void)
{
	struct fixture f;
	uint8_t bitmap[8];
	uint64_t n = 0;
	int r = 0;

	if (!fixture_init(&f, 1 << 20))
		return;
	while (n < 64) {
		r = put_blocks(f.c, n, 1, BLK);
		if (r < 0)
			break;
		n++;
	}
	check_int(r, ==, -ENOSPC);
	check_uint(n, >, 2);
	printf("# %d blocks of 64 KiB fit a 1 MiB map\n", (int)n);
	r = put_blocks(f.c, 40, 2, BLK);
	check_int(r, ==, -ENOSPC);
	r = get_block(f.c, 40, BLK);
	check_int(r, ==, -ENOENT);
	for (uint64_t i = 0; i < n; i++) {
		r = get_block(f.c, i, BLK);
		check_int(r, ==, 0);
	}
	r = (int)cache_present(f.c, 64, bitmap);
	check_int(r, ==, (int)n);
	/* LMDB reuses the pages a transaction freed only a transaction or
	 * two later: free some room in several. */
	for (uint64_t i = 0; i < 4; i++) {
		r = cache_del(f.c, i);
		check_int(r, ==, 0);
	}
	r = put_blocks(f.c, 50, 1, BLK);
	check_int(r, ==, 0);
	r = get_block(f.c, 50, BLK);
	check_int(r, ==, 0);
	fixture_fini(&f);
}

/* A commit that cannot be written (file size limit: EFBIG) fails the
 * cache: -EIO from then on, and what was committed before survives. */
static void test_failed(void)
{
	struct fixture f;
	_cleanup_free_ char *path = NULL;
	struct rlimit old, lim;
	struct stat st;
	void (*old_sig)(int);
	uint8_t bitmap[1];
	int r;

	if (!fixture_init(&f, 0))
		return;
	r = put_blocks(f.c, 0, 2, BLK);
	check_int(r, ==, 0);
	if (asprintf(&path, "%s/data.mdb", f.dir) < 0)
		abort();
	r = stat(path, &st);
	check_int(r, ==, 0);
	old_sig = signal(SIGXFSZ, SIG_IGN);
	r = getrlimit(RLIMIT_FSIZE, &old);
	check_int(r, ==, 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size;
	r = setrlimit(RLIMIT_FSIZE, &lim);
	check_int(r, ==, 0);
	r = put_blocks(f.c, 2, 16, BLK);
	check_int(r, ==, -EIO);
	r = setrlimit(RLIMIT_FSIZE, &old);
	check_int(r, ==, 0);
	signal(SIGXFSZ, old_sig);

	r = get_block(f.c, 0, BLK);
	check_int(r, ==, -EIO);
	r = put_blocks(f.c, 2, 1, BLK);
	check_int(r, ==, -EIO);
	r = (int)cache_present(f.c, 8, bitmap);
	check_int(r, ==, -EIO);
	if (!fixture_reopen(&f))
		goto out;
	r = get_block(f.c, 1, BLK);
	check_int(r, ==, 0);
	r = get_block(f.c, 2, BLK);
	check_int(r, ==, -ENOENT);
out:
	fixture_fini(&f);
}

/* A new identity in the same directory (after keys_destroy()) finds an
 * empty cache, not blocks it cannot open. */
static void test_new_identity(void)
{
	struct fixture f;
	uint8_t bitmap[1];
	void *val = NULL;
	int r;

	if (!fixture_init(&f, 0))
		return;
	r = put_blocks(f.c, 0, 3, BLK);
	check_int(r, ==, 0);
	r = cache_meta_put(f.c, "version", "3", 1);
	check_int(r, ==, 0);
	check(crypto_random(f.id, sizeof(f.id)) == 0);
	check(crypto_random(f.key, sizeof(f.key)) == 0);
	if (!fixture_reopen(&f))
		goto out;
	r = (int)cache_present(f.c, 8, bitmap);
	check_int(r, ==, 0);
	r = cache_meta_get(f.c, "version", &val, NULL);
	check_int(r, ==, -ENOENT);
	r = put_blocks(f.c, 0, 1, BLK);
	check_int(r, ==, 0);
	if (!fixture_reopen(&f))
		goto out;
	r = get_block(f.c, 0, BLK);
	check_int(r, ==, 0);
out:
	fixture_fini(&f);
}

/* Not a pass/fail check: the numbers go to the TAP log. */
static void bench(void)
{
	enum { N = 2048, BATCH = 64 };
	struct fixture f;
	_cleanup_free_ struct cache_put *items = calloc(N, sizeof(*items));
	_cleanup_free_ uint8_t *buf = malloc(BLK);
	uint8_t hash[VMF_HASH_LEN];
	uint64_t t0, t1, t2, t3;
	double mib = N * (double)BLK / (1 << 20);
	int r = 0;

	if (!fixture_init(&f, 0))
		return;
	block_fill(0, buf, BLK, hash);
	for (uint64_t i = 0; i < N; i++)
		items[i] = (struct cache_put){
		    .blkno = i, .hash = hash, .buf = buf, .len = BLK};
	t0 = now_ns();
	for (size_t i = 0; i < N; i += BATCH)
		r |= cache_put_batch(f.c, items + i, BATCH);
	t1 = now_ns();
	for (uint64_t i = 0; i < N; i++)
		r |= cache_get(f.c, i, hash, buf, BLK);
	t2 = now_ns();
	for (size_t i = 0; i < 16; i++)
		r |= cache_put_batch(f.c, items + i, 1);
	t3 = now_ns();
	check_int(r, ==, 0);
	printf("# 64 KiB blocks: put %.0f MiB/s (batches of %d), get %.0f "
	       "MiB/s, one-block put %.2f ms\n",
	       mib / ((double)(t1 - t0) / 1e9), BATCH,
	       mib / ((double)(t2 - t1) / 1e9), (double)(t3 - t2) / 16 / 1e6);
	fixture_fini(&f);
}

int main(void)
{
	TEST(test_roundtrip(), "put/get round trip, across a reopen");
	TEST(test_short_block(), "short final block");
	TEST(test_wrong_hash(), "get with another hash is -EBADMSG");
	TEST(test_swapped(), "a value moved to another block is -EBADMSG");
	TEST(test_absent(), "absent block is -ENOENT; delete");
	TEST(test_present(), "present bitmap and count");
	TEST(test_meta(), "meta put/get");
	TEST(test_no_plaintext(), "no plaintext in data.mdb");
	TEST(test_sparse(), "default map is not allocated up front");
	TEST(test_map_full(), "full map is -ENOSPC; cache stays usable");
	TEST(test_failed(),
	     "failed commit fails the cache; committed data survives");
	TEST(test_new_identity(), "new identity empties the environment");
	TEST(bench(), "put/get throughput (diagnostic)");
	return test_done();
}
