/* SPDX-License-Identifier: MIT */
/* TAP output for unit tests.  Single-threaded. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"

static int tap_count;
static int tap_failed;
static bool tap_current_failed;

void tap_test_begin(void)
{
	tap_current_failed = false;
}

void tap_test_end(const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	if (tap_current_failed)
		tap_failed++;
	printf("%s %d - ", tap_current_failed ? "not ok" : "ok", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static bool tap_fail(const char *file, int line, const char *expr)
{
	tap_current_failed = true;
	printf("# check \"%s\" failed at %s:%d\n", expr, file, line);
	return false;
}

bool tap_check(bool ok, const char *expr, const char *file, int line)
{
	return ok ? true : tap_fail(file, line, expr);
}

bool tap_check_int(bool ok, intmax_t a, intmax_t b, const char *expr,
		   const char *file, int line)
{
	if (ok)
		return true;
	tap_fail(file, line, expr);
	printf("#    left: %" PRIdMAX "\n#   right: %" PRIdMAX "\n", a, b);
	return false;
}

bool tap_check_uint(bool ok, uintmax_t a, uintmax_t b, const char *expr,
		    const char *file, int line)
{
	if (ok)
		return true;
	tap_fail(file, line, expr);
	printf("#    left: %" PRIuMAX "\n#   right: %" PRIuMAX "\n", a, b);
	return false;
}

bool tap_check_mem(const void *a, const void *b, size_t len, const char *expr,
		   const char *file, int line)
{
	const unsigned char *pa = a, *pb = b;

	if (memcmp(a, b, len) == 0)
		return true;
	tap_fail(file, line, expr);
	for (size_t i = 0; i < len; i++) {
		if (pa[i] != pb[i]) {
			printf(
			    "#   first difference at byte %zu: %02x != %02x\n",
			    i, pa[i], pb[i]);
			break;
		}
	}
	return false;
}

int test_done(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed)
		printf("# %d of %d tests failed\n", tap_failed, tap_count);
	return tap_failed ? 1 : 0;
}
