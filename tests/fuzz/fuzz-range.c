/* SPDX-License-Identifier: MIT */
/* libFuzzer target for server/range.c: the value of a client's Range
 * header.  The input, cut at its first NUL, is parsed against a few
 * representation sizes (fixed edges and the numbers in the input, +-1)
 * and the answer compared with a model written from range.h alone.
 * Invariant violations abort. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DIGITS "0123456789"

/* range.h's contract, by other means: strspn for the grammar, strtoull
 * (which saturates at UINT64_MAX, as range.h says) for the numbers. */
static int model(const char *s, uint64_t total, struct range *ret)
{
	size_t na, nb;
	uint64_t a, b;

	if (strncasecmp(s, "bytes=", 6) != 0)
		return -EINVAL;
	s += 6;
	if (strchr(s, ','))
		return -EOPNOTSUPP;
	na = strspn(s, DIGITS);
	nb = s[na] == '-' ? strspn(s + na + 1, DIGITS) : 0;
	if (s[na] != '-' || s[na + 1 + nb] != '\0' || na + nb == 0)
		return -EINVAL;
	a = na ? strtoull(s, NULL, 10) : 0;
	b = nb ? strtoull(s + na + 1, NULL, 10) : UINT64_MAX;
	if (na == 0) {
		/* bytes=-N */
		if (b == 0 || total == 0)
			return -ERANGE;
		ret->len = b < total ? b : total;
		ret->off = total - ret->len;
		return 0;
	}
	if (b < a)
		return -EINVAL;
	if (a >= total)
		return -ERANGE;
	ret->off = a;
	ret->len = (b < total ? b : total - 1) - a + 1;
	return 0;
}

static void check_one(const char *s, uint64_t total)
{
	struct range got = {7, 7}, want = {7, 7};
	int r, w;

	r = range_parse(s, total, &got);
	w = model(s, total, &want);
	assert(r == 0 || r == -EINVAL || r == -EOPNOTSUPP || r == -ERANGE);
	assert(r == w);
	if (r < 0) {
		/* *ret is left alone on error */
		assert(got.off == 7 && got.len == 7);
		return;
	}
	assert(got.len >= 1);
	assert(got.off < total);
	assert(got.len <= total - got.off);
	assert(got.off == want.off && got.len == want.len);
}

/* Add n - 1, n and n + 1 (saturating) to t[*k..]. */
static void add_near(uint64_t *t, size_t *k, uint64_t n)
{
	t[(*k)++] = n ? n - 1 : 0;
	t[(*k)++] = n;
	t[(*k)++] = n < UINT64_MAX ? n + 1 : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t totals[32] = {0, 1, 2, 1000, UINT64_MAX - 1, UINT64_MAX};
	size_t k = 6, nnum = 0;
	char *s, *p;

	s = malloc(size + 1);
	assert(s);
	memcpy(s, data, size);
	s[size] = '\0';
	add_near(totals, &k, size);
	for (p = s; *p && nnum < 4; p++) {
		if (!strchr(DIGITS, *p))
			continue;
		add_near(totals, &k, strtoull(p, &p, 10));
		nnum++;
		if (!*p)
			break;
	}
	for (size_t i = 0; i < k; i++)
		check_one(s, totals[i]);
	free(s);
	return 0;
}
