/* SPDX-License-Identifier: MIT */
/* Unit tests for fusefs/profile.c: the boot-profile recorder keeps the
 * first-read order, once per block, up to its cap. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto.h"

#include "profile.h"
#include "tap.h"

static void test_order(void)
{
	struct profile *p = NULL;
	uint64_t *got = NULL;
	size_t n = 0;
	bool closed = true;

	check_int(profile_new(100, 10, &p), ==, 0);
	profile_note(p, 40, 41);
	profile_note(p, 7, 9);
	profile_note(p, 8, 8);	  /* seen: nothing new */
	profile_note(p, 98, 120); /* clipped at the image's end */
	profile_count(p, &n, &closed);
	check_uint(n, ==, 7);
	check(!closed);
	check_int(profile_close(p, &got, &n), ==, 0);
	profile_note(p, 0, 0); /* closed: ignored */
	if (check_uint(n, ==, 7)) {
		static const uint64_t want[] = {40, 41, 7, 8, 9, 98, 99};

		check_mem(got, want, sizeof(want));
	}
	free(got);
	profile_free(p);
	profile_note(NULL, 0, 5); /* not recording: a no-op */
}

static void test_cap(void)
{
	struct profile *p = NULL;
	uint64_t *got = NULL;
	size_t n = 0;
	bool closed = false;

	check_int(profile_new(1000, 4, &p), ==, 0);
	profile_note(p, 0, 9);
	profile_count(p, &n, &closed);
	check_uint(n, ==, 4);
	check(closed);
	check_int(profile_close(p, &got, &n), ==, 0);
	check_uint(n, ==, 4);
	check_uint(got[3], ==, 3);
	free(got);
	profile_free(p);
	check_int(profile_new(10, 0, &p), ==, -EINVAL);
	check_int(profile_new(10, VMF_PROFILE_MAX_BLOCKS + 1, &p), ==, -EINVAL);
	check_int(profile_new(0, 1, &p), ==, -EINVAL);
}

static void test_empty(void)
{
	struct profile *p = NULL;
	uint64_t *got = (uint64_t *)&got;
	size_t n = 1;

	check_int(profile_new(10, 10, &p), ==, 0);
	check_int(profile_close(p, &got, &n), ==, 0);
	check_uint(n, ==, 0);
	check(got == NULL);
	profile_free(p);
}

int main(void)
{
	TEST(test_order(), "first-read order, each block once");
	TEST(test_cap(), "recording stops at the cap");
	TEST(test_empty(), "nothing read: an empty profile");
	return test_done();
}
