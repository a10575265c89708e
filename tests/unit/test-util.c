/* SPDX-License-Identifier: MIT */
/* Unit tests for lib/util.c: the option parsers users type values into. */
#include <errno.h>
#include <stdint.h>

#include "util.h"

#include "tap.h"

static uint64_t v;

static void test_parse_size(void)
{
	check_int(parse_size("0", &v), ==, 0);
	check_uint(v, ==, 0);
	check_int(parse_size("64K", &v), ==, 0);
	check_uint(v, ==, 65536);
	check_int(parse_size("5M", &v), ==, 0);
	check_uint(v, ==, 5u << 20);
	check_int(parse_size("2GiB", &v), ==, 0);
	check_uint(v, ==, 2ull << 30);
	check_int(parse_size("1tb", &v), ==, 0);
	check_uint(v, ==, 1ull << 40);
	check_int(parse_size("100B", &v), ==, 0);
	check_uint(v, ==, 100);
	check_int(parse_size("", &v), ==, -EINVAL);
	check_int(parse_size("K", &v), ==, -EINVAL);
	check_int(parse_size("-1", &v), ==, -EINVAL);
	check_int(parse_size("5X", &v), ==, -EINVAL);
	check_int(parse_size("5KX", &v), ==, -EINVAL);
	check_int(parse_size("17179869184T", &v), ==, -ERANGE);
	check_int(parse_size("99999999999999999999", &v), ==, -ERANGE);
}

static void test_parse_duration(void)
{
	check_int(parse_duration("30", &v), ==, 0);
	check_uint(v, ==, 30);
	check_int(parse_duration("2m", &v), ==, 0);
	check_uint(v, ==, 120);
	check_int(parse_duration("1d", &v), ==, 0);
	check_uint(v, ==, 86400);
	check_int(parse_duration("1w", &v), ==, -EINVAL);
	check_int(parse_duration("s", &v), ==, -EINVAL);
}

static void test_parse_u64(void)
{
	check_int(parse_u64("18446744073709551615", &v), ==, 0);
	check_uint(v, ==, UINT64_MAX);
	check_int(parse_u64("18446744073709551616", &v), ==, -ERANGE);
	check_int(parse_u64("12a", &v), ==, -EINVAL);
	check_int(parse_u64(" 1", &v), ==, -EINVAL);
}

static void test_image_names(void)
{
	check(image_name_valid("web01"));
	check(image_name_valid("a.b_c-d"));
	check(!image_name_valid(""));
	check(!image_name_valid(".hidden"));
	check(!image_name_valid(".."));
	check(!image_name_valid("a/b"));
	check(!image_name_valid("a b"));
	check(!image_name_valid(
	    "a1234567890123456789012345678901234567890123456789012345678901234"));
	check(image_name_valid(
	    "a123456789012345678901234567890123456789012345678901234567890123"));
}

int main(void)
{
	TEST(test_parse_size(), "sizes with K/M/G/T suffixes");
	TEST(test_parse_duration(), "durations with s/m/h/d suffixes");
	TEST(test_parse_u64(), "plain numbers");
	TEST(test_image_names(), "image names");
	return test_done();
}
