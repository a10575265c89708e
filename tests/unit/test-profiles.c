/* SPDX-License-Identifier: MIT */
/* Unit tests for server/profiles.c's pure part: checking an upload's
 * body, and merging uploads by mean rank (docs/protocol.md, "Boot
 * profiles").  The store functions are covered by
 * tests/integration/065-profile.sh and 066-profile-bad-input.sh. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#include "profiles.h"
#include "tap.h"

/* Parse body for version 1 of an image of 16 blocks. */
static int parse(const char *body, uint64_t **ret, size_t *ret_n)
{
	const char *why = NULL;
	int r =
	    profiles_parse_upload(body, strlen(body), 1, 16, ret, ret_n, &why);

	check((r == -EBADMSG) == (why != NULL));
	return r;
}

static void test_parse(void)
{
	uint64_t *b = NULL;
	size_t n = 0;

	check_int(parse("{\"version\": 1, \"blocks\": [4, 0, 15]}", &b, &n), ==,
		  0);
	check_uint(n, ==, 3);
	check_uint(b[0], ==, 4);
	check_uint(b[1], ==, 0);
	check_uint(b[2], ==, 15);
	free(b);
	check_int(parse("", &b, &n), ==, -EBADMSG);
	check_int(parse("[1]", &b, &n), ==, -EBADMSG);
	check_int(parse("{\"blocks\": [1]}", &b, &n), ==, -EBADMSG);
	check_int(parse("{\"version\": 2, \"blocks\": [1]}", &b, &n), ==,
		  -EBADMSG);
	check_int(parse("{\"version\": 1, \"blocks\": []}", &b, &n), ==,
		  -EBADMSG);
	check_int(parse("{\"version\": 1, \"blocks\": [16]}", &b, &n), ==,
		  -EBADMSG);
	check_int(parse("{\"version\": 1, \"blocks\": [-1]}", &b, &n), ==,
		  -EBADMSG);
	check_int(parse("{\"version\": 1, \"blocks\": [true]}", &b, &n), ==,
		  -EBADMSG);
	check_int(parse("{\"version\": 1, \"blocks\": [2, 3, 2]}", &b, &n), ==,
		  -EBADMSG);
	check_int(
	    parse("{\"version\": 1, \"version\": 1, \"blocks\": [1]}", &b, &n),
	    ==, -EBADMSG);
}

static void test_parse_max(void)
{
	size_t len = 64 + (size_t)(VMF_PROFILE_MAX_BLOCKS + 1) * 8, at;
	char *body = malloc(len);
	const char *why = NULL;
	uint64_t *b = NULL;
	size_t n = 0;

	if (!check(body != NULL))
		return;
	/* The most blocks an upload may have; then one more. */
	for (int extra = 0; extra < 2; extra++) {
		at = (size_t)snprintf(body, len,
				      "{\"version\": 1, \"blocks\": [");
		for (uint64_t i = 0;
		     i < (uint64_t)(VMF_PROFILE_MAX_BLOCKS + extra); i++)
			at += (size_t)snprintf(body + at, len - at, "%s%llu",
					       i ? "," : "",
					       (unsigned long long)i);
		at += (size_t)snprintf(body + at, len - at, "]}");
		check_int(
		    profiles_parse_upload(body, at, 1, 1u << 20, &b, &n, &why),
		    ==, extra ? -EBADMSG : 0);
		if (!extra)
			check_uint(n, ==, VMF_PROFILE_MAX_BLOCKS);
		free(b);
		b = NULL;
	}
	free(body);
}

/* The profile's blocks, as "b b b". */
static const char *order(const struct profile *p)
{
	static char buf[256];
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->n && at < sizeof(buf); i++)
		at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%llu",
				       i ? " " : "",
				       (unsigned long long)p->e[i].block);
	return buf;
}

static void test_merge(void)
{
	static const uint64_t a[] = {5, 6, 7, 8};
	static const uint64_t b[] = {8, 20};
	static const uint64_t c[] = {7};
	struct profile p = {0};

	/* One upload: its own order. */
	check_int(profiles_merge(&p, a, 4), ==, 0);
	check(strcmp(order(&p), "5 6 7 8") == 0);
	/* Mean ranks 5:0 6:1 7:2 8:1.5 20:1; 6 before 20 (lower block). */
	check_int(profiles_merge(&p, b, 2), ==, 0);
	check(strcmp(order(&p), "5 6 20 8 7") == 0);
	check_uint(p.uploads, ==, 2);
	/* 7 now has mean 1 over two uploads: before 6 and 20 (one each). */
	check_int(profiles_merge(&p, c, 1), ==, 0);
	check(strcmp(order(&p), "5 7 6 20 8") == 0);
	profiles_fini(&p);
}

static void test_merge_bounded(void)
{
	uint64_t *up = calloc(VMF_PROFILE_MAX_BLOCKS, sizeof(*up));
	struct profile p = {0};

	if (!check(up != NULL))
		return;
	for (uint64_t i = 0; i < VMF_PROFILE_MAX_BLOCKS; i++)
		up[i] = i;
	check_int(profiles_merge(&p, up, VMF_PROFILE_MAX_BLOCKS), ==, 0);
	/* Another client's blocks, all new: the latest-ranked go. */
	for (uint64_t i = 0; i < VMF_PROFILE_MAX_BLOCKS; i++)
		up[i] = VMF_PROFILE_MAX_BLOCKS + i;
	check_int(profiles_merge(&p, up, 10), ==, 0);
	check_uint(p.n, ==, VMF_PROFILE_MAX_BLOCKS);
	check_uint(p.e[0].block, ==, 0);
	check_uint(p.e[1].block, ==, VMF_PROFILE_MAX_BLOCKS);
	profiles_fini(&p);
	free(up);
}

int main(void)
{
	TEST(test_parse(), "upload bodies: what is accepted, what is 400");
	TEST(test_parse_max(), "at most VMF_PROFILE_MAX_BLOCKS blocks");
	TEST(test_merge(), "merge: mean rank, then uploads, then block");
	TEST(test_merge_bounded(), "the merged profile stays bounded");
	return test_done();
}
