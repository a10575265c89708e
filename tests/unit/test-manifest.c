/* SPDX-License-Identifier: MIT */
/* Unit tests for lib/manifest.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "manifest.h"
#include "tap.h"

static struct manifest make(uint64_t size, uint32_t bs)
{
	struct manifest m = {.hdr = {.block_size = bs, .image_size = size}};

	m.hdr.nblocks = manifest_nblocks(size, bs);
	m.hdr.version = 7;
	m.hashes = calloc(m.hdr.nblocks + 1, VMF_HASH_LEN);
	for (uint64_t i = 0; i < m.hdr.nblocks; i++)
		if (i % 3)
			hash_sha256(&i, sizeof(i), m.hashes + i * VMF_HASH_LEN);
	return m;
}

static void test_roundtrip(void)
{
	struct manifest m = make(1000000, 65536), back;
	uint8_t *buf;
	size_t len;

	check_int(manifest_encode(&m, &buf, &len), ==, 0);
	check_uint(len, ==, 64 + 16 * 32);
	check_int(manifest_parse(buf, len, &back), ==, 0);
	check_uint(back.hdr.nblocks, ==, 16);
	check_uint(back.hdr.image_size, ==, 1000000);
	check_uint(back.hdr.version, ==, 7);
	check_mem(back.hashes, m.hashes, 16 * 32);
	check(hash_is_zero(manifest_hash(&back, 0)));
	check(!hash_is_zero(manifest_hash(&back, 1)));
	check_uint(manifest_block_len(&back.hdr, 15), ==, 1000000 - 15 * 65536);
	check_uint(manifest_block_len(&back.hdr, 0), ==, 65536);
	manifest_fini(&back);
	manifest_fini(&m);
	free(buf);
}

/* Encode a valid manifest, let mutate() break it, expect -EBADMSG. */
static void expect_bad(void (*mutate)(uint8_t *buf, size_t *len))
{
	struct manifest m = make(300000, 4096), back;
	uint8_t *buf;
	size_t len;

	check_int(manifest_encode(&m, &buf, &len), ==, 0);
	mutate(buf, &len);
	check_int(manifest_parse(buf, len, &back), ==, -EBADMSG);
	manifest_fini(&m);
	free(buf);
}

static void bad_magic(uint8_t *b, size_t *len)
{
	(void)len;
	b[0] ^= 1;
}
static void bad_format(uint8_t *b, size_t *len)
{
	(void)len;
	b[8] = 2;
}
static void bad_bs_not_pow2(uint8_t *b, size_t *len)
{
	(void)len;
	b[12] = 1; /* 4096 + 1 */
}
static void bad_bs_small(uint8_t *b, size_t *len)
{
	(void)len;
	memset(b + 12, 0, 4);
	b[13] = 2; /* 512 */
}
static void bad_nblocks(uint8_t *b, size_t *len)
{
	(void)len;
	b[24] ^= 1;
}
static void bad_reserved(uint8_t *b, size_t *len)
{
	(void)len;
	b[50] = 1;
}
static void bad_truncated(uint8_t *b, size_t *len)
{
	(void)b;
	*len -= 1;
}
static void bad_short_header(uint8_t *b, size_t *len)
{
	(void)b;
	*len = 40;
}
static void bad_huge(uint8_t *b, size_t *len)
{
	(void)len;
	memset(b + 16, 0xff, 8); /* image size 2^64-1 */
}

static void test_header_only(void)
{
	struct manifest m = make(8192 * 3, 8192);
	struct manifest_header h;
	uint8_t *buf;
	size_t len;

	check_int(manifest_encode(&m, &buf, &len), ==, 0);
	/* The header parses from just its 64 bytes: a client reads it
	 * before the entries. */
	check_int(manifest_header_parse(buf, 64, &h), ==, 0);
	check_uint(h.nblocks, ==, 3);
	check_uint(manifest_entry_offset(2), ==, 64 + 64);
	manifest_fini(&m);
	free(buf);
}

static void test_empty_image(void)
{
	struct manifest m = make(0, 65536), back;
	uint8_t *buf;
	size_t len;

	check_int(manifest_encode(&m, &buf, &len), ==, 0);
	check_uint(len, ==, 64);
	check_int(manifest_parse(buf, len, &back), ==, 0);
	check_uint(back.hdr.nblocks, ==, 0);
	manifest_fini(&back);
	manifest_fini(&m);
	free(buf);
}

int main(void)
{
	TEST(test_roundtrip(), "encode/parse round trip");
	TEST(test_header_only(), "header parses alone");
	TEST(test_empty_image(), "empty image");
	TEST(expect_bad(bad_magic), "rejects bad magic");
	TEST(expect_bad(bad_format), "rejects unknown format");
	TEST(expect_bad(bad_bs_not_pow2),
	     "rejects block size not a power of 2");
	TEST(expect_bad(bad_bs_small), "rejects block size below minimum");
	TEST(expect_bad(bad_nblocks), "rejects inconsistent block count");
	TEST(expect_bad(bad_reserved), "rejects reserved bytes set");
	TEST(expect_bad(bad_truncated), "rejects truncated manifest");
	TEST(expect_bad(bad_short_header), "rejects short header");
	TEST(expect_bad(bad_huge), "rejects image size over the limit");
	return test_done();
}
