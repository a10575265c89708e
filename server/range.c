/* SPDX-License-Identifier: MIT */
/* HTTP Range header parsing.
 *
 * Owns nothing; pure.  Strict on purpose: anything but one well-formed
 * byte range is an error the client sees, never a silent 200 that a
 * client could take for the range it asked for.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "range.h"

#define RANGE_UNIT "bytes="

/* Parse the decimal digits at *p into *ret and advance *p past them.
 * A number too large for uint64_t saturates to UINT64_MAX: it lies past
 * the end of any representation, which is what it means.  Returns 0 or
 * -EINVAL if there is no digit. */
static int parse_digits(const char **p, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;
	bool sat = false;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			sat = true;
	}
	*p = s;
	*ret = sat ? UINT64_MAX : v;
	return 0;
}

/* "N" of "bytes=-N": the last N bytes. */
static int parse_suffix(const char *s, uint64_t total, struct range *ret)
{
	uint64_t n;

	if (parse_digits(&s, &n) < 0 || *s)
		return -EINVAL;
	if (n == 0 || total == 0)
		return -ERANGE;
	if (n > total)
		n = total;
	ret->off = total - n;
	ret->len = n;
	return 0;
}

/* "A-B" or "A-". */
static int parse_first_last(const char *s, uint64_t total, struct range *ret)
{
	uint64_t first, last = UINT64_MAX;

	if (parse_digits(&s, &first) < 0 || *s != '-')
		return -EINVAL;
	s++;
	if (*s) {
		if (parse_digits(&s, &last) < 0 || *s)
			return -EINVAL;
		if (last < first)
			return -EINVAL;
	}
	if (first >= total)
		return -ERANGE;
	if (last >= total)
		last = total - 1;
	ret->off = first;
	ret->len = last - first + 1;
	return 0;
}

int range_parse(const char *value, uint64_t total, struct range *ret)
{
	const char *spec;
	struct range rg;
	int r;

	if (!value || strncasecmp(value, RANGE_UNIT, strlen(RANGE_UNIT)) != 0)
		return -EINVAL;
	spec = value + strlen(RANGE_UNIT);
	if (strchr(spec, ','))
		return -EOPNOTSUPP;
	if (spec[0] == '-')
		r = parse_suffix(spec + 1, total, &rg);
	else
		r = parse_first_last(spec, total, &rg);
	if (r < 0)
		return r;
	*ret = rg;
	return 0;
}
