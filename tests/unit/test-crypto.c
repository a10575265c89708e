/* SPDX-License-Identifier: MIT */
/* Unit tests for fusefs/crypto.c, and a throughput diagnostic. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hash.h"
#include "util.h"

#include "crypto.h"
#include "tap.h"

#define BLK 65536

struct fixture {
	uint8_t key[CRYPTO_KEY_LEN];
	uint8_t id[CRYPTO_CACHE_ID_LEN];
	uint8_t hash[VMF_HASH_LEN];
	uint8_t aad[CRYPTO_BLOCK_AAD_LEN];
	uint8_t *plain;
	uint8_t *sealed;
	uint8_t *out;
	size_t len;
};

/* A random key, cache id and len-byte block sealed as block 5. */
static void fixture_init(struct fixture *f, size_t len)
{
	int r;

	f->len = len;
	f->plain = malloc(len + 1);
	f->sealed = malloc(len + CRYPTO_OVERHEAD);
	f->out = malloc(len + 1);
	check(f->plain && f->sealed && f->out);
	r = crypto_random(f->key, sizeof(f->key));
	check_int(r, ==, 0);
	r = crypto_random(f->id, sizeof(f->id));
	check_int(r, ==, 0);
	r = crypto_random(f->plain, len);
	check_int(r, ==, 0);
	hash_sha256(f->plain, len, f->hash);
	crypto_block_aad(f->id, 5, f->hash, f->aad);
	r = crypto_seal(f->key, f->aad, sizeof(f->aad), f->plain, len,
			f->sealed);
	check_int(r, ==, 0);
}

static void fixture_fini(struct fixture *f)
{
	free(f->plain);
	free(f->sealed);
	free(f->out);
}

/* Open f's blob with aad; returns crypto_open's result.  On -EBADMSG the
 * output must have been zeroed. */
static int fixture_open(struct fixture *f, const uint8_t *key,
			const uint8_t *aad)
{
	int r;

	memset(f->out, 0xa5, f->len);
	r = crypto_open(key, aad, CRYPTO_BLOCK_AAD_LEN, f->sealed,
			f->len + CRYPTO_OVERHEAD, f->out);
	if (r == -EBADMSG)
		check(f->len == 0 || hash_is_zero_buf(f->out, f->len));
	return r;
}

static void test_roundtrip(size_t len)
{
	struct fixture f;
	int r;

	fixture_init(&f, len);
	r = fixture_open(&f, f.key, f.aad);
	check_int(r, ==, 0);
	check_mem(f.out, f.plain, len);
	/* The ciphertext is not the plaintext. */
	check(len < 16 ||
	      memcmp(f.sealed + CRYPTO_NONCE_LEN, f.plain, len) != 0);
	fixture_fini(&f);
}

/* Flip one bit at byte off of the sealed blob: the open must fail. */
static void test_flip(size_t off)
{
	struct fixture f;
	int r;

	fixture_init(&f, 4096);
	f.sealed[off] ^= 0x10;
	r = fixture_open(&f, f.key, f.aad);
	check_int(r, ==, -EBADMSG);
	f.sealed[off] ^= 0x10;
	r = fixture_open(&f, f.key, f.aad);
	check_int(r, ==, 0);
	fixture_fini(&f);
}

static void test_wrong_aad(void)
{
	struct fixture f;
	uint8_t aad[CRYPTO_BLOCK_AAD_LEN], other[VMF_HASH_LEN];
	int r;

	fixture_init(&f, BLK);
	/* Another index: a block moved to another place. */
	crypto_block_aad(f.id, 6, f.hash, aad);
	r = fixture_open(&f, f.key, aad);
	check_int(r, ==, -EBADMSG);
	crypto_block_aad(f.id, 5ull | 1ull << 32, f.hash, aad);
	r = fixture_open(&f, f.key, aad);
	check_int(r, ==, -EBADMSG);
	/* Another hash: a stale version's block. */
	memcpy(other, f.hash, sizeof(other));
	other[VMF_HASH_LEN - 1] ^= 1;
	crypto_block_aad(f.id, 5, other, aad);
	r = fixture_open(&f, f.key, aad);
	check_int(r, ==, -EBADMSG);
	/* Another cache id: a block copied from another cache. */
	memcpy(other, f.id, CRYPTO_CACHE_ID_LEN);
	other[0] ^= 0x80;
	crypto_block_aad(other, 5, f.hash, aad);
	r = fixture_open(&f, f.key, aad);
	check_int(r, ==, -EBADMSG);
	/* And the right one still opens. */
	crypto_block_aad(f.id, 5, f.hash, aad);
	r = fixture_open(&f, f.key, aad);
	check_int(r, ==, 0);
	fixture_fini(&f);
}

static void test_wrong_key(void)
{
	struct fixture f;
	uint8_t key[CRYPTO_KEY_LEN];
	int r;

	fixture_init(&f, BLK);
	memcpy(key, f.key, sizeof(key));
	key[31] ^= 1;
	r = fixture_open(&f, key, f.aad);
	check_int(r, ==, -EBADMSG);
	fixture_fini(&f);
}

static void test_fresh_nonce(void)
{
	struct fixture f;
	_cleanup_free_ uint8_t *again = NULL;
	int r;

	fixture_init(&f, BLK);
	again = malloc(BLK + CRYPTO_OVERHEAD);
	check(again != NULL);
	r = crypto_seal(f.key, f.aad, sizeof(f.aad), f.plain, BLK, again);
	check_int(r, ==, 0);
	check(memcmp(again, f.sealed, CRYPTO_NONCE_LEN) != 0);
	check(memcmp(again + CRYPTO_NONCE_LEN, f.sealed + CRYPTO_NONCE_LEN,
		     BLK) != 0);
	fixture_fini(&f);
}

static void test_short_blob(void)
{
	struct fixture f;
	int r;

	fixture_init(&f, 0);
	r = fixture_open(&f, f.key, f.aad);
	check_int(r, ==, 0);
	r = crypto_open(f.key, f.aad, sizeof(f.aad), f.sealed,
			CRYPTO_OVERHEAD - 1, f.out);
	check_int(r, ==, -EBADMSG);
	r = crypto_open(f.key, f.aad, sizeof(f.aad), f.sealed, 0, f.out);
	check_int(r, ==, -EBADMSG);
	fixture_fini(&f);
}

static void test_wrap(void)
{
	uint8_t user[CRYPTO_KEY_LEN], other[CRYPTO_KEY_LEN];
	uint8_t id[CRYPTO_CACHE_ID_LEN], id2[CRYPTO_CACHE_ID_LEN];
	uint8_t data[CRYPTO_KEY_LEN], back[CRYPTO_KEY_LEN];
	uint8_t wrapped[CRYPTO_WRAPPED_KEY_LEN];
	int r;

	r = crypto_random(user, sizeof(user));
	check_int(r, ==, 0);
	r = crypto_random(id, sizeof(id));
	check_int(r, ==, 0);
	r = crypto_random(data, sizeof(data));
	check_int(r, ==, 0);
	r = crypto_wrap_key(user, id, NULL, 0, data, wrapped);
	check_int(r, ==, 0);
	check(memcmp(wrapped + CRYPTO_NONCE_LEN, data, sizeof(data)) != 0);
	r = crypto_unwrap_key(user, id, NULL, 0, wrapped, back);
	check_int(r, ==, 0);
	check_mem(back, data, sizeof(data));

	memcpy(other, user, sizeof(other));
	other[0] ^= 1;
	r = crypto_unwrap_key(other, id, NULL, 0, wrapped, back);
	check_int(r, ==, -EBADMSG);
	check(hash_is_zero_buf(back, sizeof(back)));
	memcpy(id2, id, sizeof(id2));
	id2[15] ^= 1;
	r = crypto_unwrap_key(user, id2, NULL, 0, wrapped, back);
	check_int(r, ==, -EBADMSG);
	/* The context is bound: another one (or none) does not unwrap. */
	r = crypto_wrap_key(user, id, "hdr-a", 5, data, wrapped);
	check_int(r, ==, 0);
	r = crypto_unwrap_key(user, id, "hdr-b", 5, wrapped, back);
	check_int(r, ==, -EBADMSG);
	r = crypto_unwrap_key(user, id, NULL, 0, wrapped, back);
	check_int(r, ==, -EBADMSG);
	r = crypto_unwrap_key(user, id, "hdr-a", 5, wrapped, back);
	check_int(r, ==, 0);
	check_mem(back, data, sizeof(data));
	wrapped[CRYPTO_WRAPPED_KEY_LEN - 1] ^= 1;
	r = crypto_unwrap_key(user, id, "hdr-a", 5, wrapped, back);
	check_int(r, ==, -EBADMSG);
	crypto_cleanse(data, sizeof(data));
	check(hash_is_zero_buf(data, sizeof(data)));
}

/* Not a pass/fail check: the number goes to the TAP log. */
static void bench(void)
{
	enum { ROUNDS = 4096 }; /* 256 MiB each way */
	struct fixture f;
	uint64_t t0, t1, t2;
	double mib = ROUNDS * (double)BLK / (1 << 20);
	int r = 0;

	fixture_init(&f, BLK);
	t0 = now_ns();
	for (int i = 0; i < ROUNDS; i++)
		r |= crypto_seal(f.key, f.aad, sizeof(f.aad), f.plain, BLK,
				 f.sealed);
	t1 = now_ns();
	for (int i = 0; i < ROUNDS; i++)
		r |= crypto_open(f.key, f.aad, sizeof(f.aad), f.sealed,
				 BLK + CRYPTO_OVERHEAD, f.out);
	t2 = now_ns();
	check_int(r, ==, 0);
	printf("# 64 KiB blocks: seal %.0f MiB/s, open %.0f MiB/s\n",
	       mib / ((double)(t1 - t0) / 1e9),
	       mib / ((double)(t2 - t1) / 1e9));
	fixture_fini(&f);
}

int main(void)
{
	TEST(test_roundtrip(BLK), "seal/open round trip, 64 KiB");
	TEST(test_roundtrip(1), "seal/open round trip, 1 byte");
	TEST(test_roundtrip(0), "seal/open round trip, empty");
	TEST(test_roundtrip(VMF_BLOCK_SIZE_MAX), "seal/open round trip, 4 MiB");
	TEST(test_flip(0), "flipped bit in the nonce rejected");
	TEST(test_flip(CRYPTO_NONCE_LEN + 100),
	     "flipped bit in the ciphertext rejected");
	TEST(test_flip(CRYPTO_NONCE_LEN + 4096 + 3),
	     "flipped bit in the tag rejected");
	TEST(test_wrong_aad(), "wrong index, hash or cache id rejected");
	TEST(test_wrong_key(), "wrong key rejected");
	TEST(test_fresh_nonce(), "two seals of the same block differ");
	TEST(test_short_blob(), "blob shorter than the overhead rejected");
	TEST(test_wrap(), "data key wrap/unwrap, wrong user key rejected");
	TEST(bench(), "seal/open throughput (diagnostic)");
	return test_done();
}
