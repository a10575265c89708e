/* SPDX-License-Identifier: MIT */
/* Unit tests for server/zrange.c: which requests ask for zstd, and that a
 * range is compressed only when it shrinks, into one frame that decodes
 * to the same bytes (checksum included). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "tap.h"
#include "zrange.h"

static void test_accepted(void)
{
	check(zrange_accepted("zstd"));
	check(zrange_accepted("ZSTD"));
	check(zrange_accepted("gzip, zstd"));
	check(zrange_accepted(" zstd ;q=1"));
	check(!zrange_accepted(NULL));
	check(!zrange_accepted(""));
	check(!zrange_accepted("gzip, br"));
	check(!zrange_accepted("zstdx"));
	check(!zrange_accepted("xzstd"));
}

static void test_compress(void)
{
	size_t len = 1u << 20, zlen = 0;
	uint8_t *raw = malloc(len), *back = malloc(len);
	unsigned long long content;
	uint64_t s = 7;
	void *z = NULL;

	check(raw && back);
	/* Text-like: shrinks. */
	for (size_t i = 0; i < len; i++)
		raw[i] =
		    (uint8_t) "the quick brown fox ju"[i % 20 + (i / 4096) % 3];
	check_int(zrange_compress(raw, len, &z, &zlen), ==, 1);
	check(z != NULL);
	check_uint(zlen, <, len / 16);
	content = ZSTD_getFrameContentSize(z, zlen);
	check_uint(content, ==, len);
	check_uint(ZSTD_decompress(back, len, z, zlen), ==, len);
	check(memcmp(raw, back, len) == 0);
	/* One flipped bit in the frame: the checksum refuses it. */
	((uint8_t *)z)[zlen / 2] ^= 0x10;
	check(ZSTD_isError(ZSTD_decompress(back, len, z, zlen)));
	free(z);
	/* Random: does not shrink by 1/16, nothing allocated. */
	for (size_t i = 0; i < len; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		raw[i] = (uint8_t)s;
	}
	z = (void *)1;
	check_int(zrange_compress(raw, len, &z, &zlen), ==, 0);
	check(z == NULL);
	/* Too large or empty: not compressed. */
	check_int(zrange_compress(raw, 0, &z, &zlen), ==, 0);
	free(raw);
	free(back);
}

int main(void)
{
	TEST(test_accepted(), "Vmferry-Accept-Encoding lists zstd or not");
	TEST(test_compress(), "compressed only when it shrinks; one frame "
			      "with its checksum");
	return test_done();
}
