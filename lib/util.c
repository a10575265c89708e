/* SPDX-License-Identifier: MIT */
/* Small parsers and formatters.  Stateless. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "proto.h"
#include "util.h"

/* Split "123abc" into a number and the suffix that follows it. */
static int parse_num_suffix(const char *s, uint64_t *ret_n,
			    const char **ret_suffix)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	*ret_n = v;
	*ret_suffix = end;
	return 0;
}

int parse_u64(const char *s, uint64_t *ret)
{
	const char *suf;
	uint64_t n;
	int r = parse_num_suffix(s, &n, &suf);

	if (r < 0)
		return r;
	if (*suf)
		return -EINVAL;
	*ret = n;
	return 0;
}

static int scale(uint64_t n, uint64_t mul, uint64_t *ret)
{
	if (__builtin_mul_overflow(n, mul, ret))
		return -ERANGE;
	return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
	const char *suf;
	uint64_t n, mul = 1;
	int r;

	r = parse_num_suffix(s, &n, &suf);
	if (r < 0)
		return r;
	switch (toupper((unsigned char)*suf)) {
	case '\0':
		return scale(n, 1, ret);
	case 'B':
		return suf[1] ? -EINVAL : scale(n, 1, ret);
	case 'K':
		mul = 1ull << 10;
		break;
	case 'M':
		mul = 1ull << 20;
		break;
	case 'G':
		mul = 1ull << 30;
		break;
	case 'T':
		mul = 1ull << 40;
		break;
	default:
		return -EINVAL;
	}
	suf++;
	if (*suf && strcasecmp(suf, "B") != 0 && strcasecmp(suf, "iB") != 0)
		return -EINVAL;
	return scale(n, mul, ret);
}

int parse_duration(const char *s, uint64_t *ret)
{
	const char *suf;
	uint64_t n, mul;
	int r;

	r = parse_num_suffix(s, &n, &suf);
	if (r < 0)
		return r;
	if (strcmp(suf, "") == 0 || strcmp(suf, "s") == 0)
		mul = 1;
	else if (strcmp(suf, "m") == 0)
		mul = 60;
	else if (strcmp(suf, "h") == 0)
		mul = 3600;
	else if (strcmp(suf, "d") == 0)
		mul = 86400;
	else
		return -EINVAL;
	return scale(n, mul, ret);
}

void format_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t now_wall(void)
{
	return (int64_t)time(NULL);
}

bool image_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > VMF_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!isalnum((unsigned char)c) && c != '.' && c != '_' &&
		    c != '-')
			return false;
	}
	return true;
}

void strip_trailing_space(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

void format_utc(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld", (long long)t);
}
