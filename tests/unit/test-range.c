/* SPDX-License-Identifier: MIT */
/* Unit tests for server/range.c: every accepted form and every way a
 * Range header can be malformed or unsatisfiable. */
#include <errno.h>
#include <stdint.h>

#include "range.h"
#include "tap.h"

/* Expect value to parse against total into [off, off + len). */
static void ok(const char *value, uint64_t total, uint64_t off, uint64_t len)
{
	struct range rg = {99, 99};

	check_int(range_parse(value, total, &rg), ==, 0);
	check_uint(rg.off, ==, off);
	check_uint(rg.len, ==, len);
}

/* Expect error r, and *ret left alone. */
static void bad(const char *value, uint64_t total, int r)
{
	struct range rg = {99, 99};

	check_int(range_parse(value, total, &rg), ==, r);
	check_uint(rg.off, ==, 99);
	check_uint(rg.len, ==, 99);
}

static void test_first_last(void)
{
	ok("bytes=0-0", 1000, 0, 1);
	ok("bytes=0-999", 1000, 0, 1000);
	ok("bytes=10-19", 1000, 10, 10);
	ok("bytes=999-999", 1000, 999, 1);
	ok("BYTES=1-2", 1000, 1, 2); /* the unit is case-insensitive */
	ok("Bytes=1-2", 1000, 1, 2);
}

static void test_clamp(void)
{
	ok("bytes=500-5000", 1000, 500, 500);
	ok("bytes=0-18446744073709551615", 1000, 0, 1000);
	/* a last-byte-pos too big for 64 bits still means "to the end" */
	ok("bytes=1-99999999999999999999999", 1000, 1, 999);
}

static void test_open_end(void)
{
	ok("bytes=0-", 1000, 0, 1000);
	ok("bytes=999-", 1000, 999, 1);
	ok("bytes=123-", 1000, 123, 877);
}

static void test_suffix(void)
{
	ok("bytes=-1", 1000, 999, 1);
	ok("bytes=-1000", 1000, 0, 1000);
	ok("bytes=-5000", 1000, 0, 1000); /* longer than the file: all */
	ok("bytes=-99999999999999999999999", 1000, 0, 1000);
	ok("bytes=-10", 10, 0, 10);
}

static void test_unsatisfiable(void)
{
	bad("bytes=1000-", 1000, -ERANGE);
	bad("bytes=1000-1000", 1000, -ERANGE);
	bad("bytes=5000-6000", 1000, -ERANGE);
	bad("bytes=99999999999999999999999-", 1000, -ERANGE);
	bad("bytes=-0", 1000, -ERANGE);
	bad("bytes=0-", 0, -ERANGE); /* nothing to give of an empty file */
	bad("bytes=0-0", 0, -ERANGE);
	bad("bytes=-1", 0, -ERANGE);
}

static void test_malformed(void)
{
	static const char *const cases[] = {
	    "",		  "bytes",	   "bytes=",
	    "bytes=-",	  "bytes=--1",	   "bytes=a-b",
	    "bytes=1",	  "bytes=1-a",	   "bytes=1-2x",
	    "bytes=1- 2", "bytes= 1-2",	   "bytes =1-2",
	    "bytes=1 -2", "bytes=1-2 ",	   "bytes=+1-2",
	    "bytes=-+1",  "bytes=0x10-20", "bytes=5-4", /* last before first */
	    "bytes=-1-2", "bytes=1-2-3",   "bits=0-1",
	    "items=0-1",  "0-1",	   "=0-1",
	    "bytes:0-1",  "bytes=1.5-2",   "bytes=-1.5",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!check_int(range_parse(cases[i], 1000, &(struct range){0}),
			       ==, -EINVAL))
			tap_check(false, cases[i], __FILE__, __LINE__);
	}
	bad(NULL, 1000, -EINVAL);
}

static void test_multi(void)
{
	bad("bytes=0-1,5-6", 1000, -EOPNOTSUPP);
	bad("bytes=0-1, 5-6", 1000, -EOPNOTSUPP);
	bad("bytes=0-1,", 1000, -EOPNOTSUPP);
	bad("bytes=,0-1", 1000, -EOPNOTSUPP);
	bad("bytes=-1,-2", 1000, -EOPNOTSUPP);
	/* multi-range is refused even when every part is past the end */
	bad("bytes=2000-3000,4000-5000", 1000, -EOPNOTSUPP);
}

int main(void)
{
	TEST(test_first_last(), "bytes=A-B");
	TEST(test_clamp(), "a last byte past the end is clamped");
	TEST(test_open_end(), "bytes=A-");
	TEST(test_suffix(), "bytes=-N");
	TEST(test_unsatisfiable(), "unsatisfiable ranges give -ERANGE");
	TEST(test_malformed(), "malformed ranges give -EINVAL");
	TEST(test_multi(), "multiple ranges give -EOPNOTSUPP");
	return test_done();
}
