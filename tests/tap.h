/* SPDX-License-Identifier: MIT */
/* TAP for C unit tests, in the shape of git's t/unit-tests/test-lib.h.
 *
 *   int main(void)
 *   {
 *           TEST(test_roundtrip(), "seal/open round trip");
 *           return test_done();
 *   }
 *
 * Inside a test, check(x), check_int(a, op, b), check_uint(a, op, b) and
 * check_mem(a, b, len) print file:line and both values on failure and
 * mark the current test failed; the test goes on.
 */
#ifndef VMFERRY_TAP_H
#define VMFERRY_TAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TEST(call, ...)                    \
	do {                               \
		tap_test_begin();          \
		call;                      \
		tap_test_end(__VA_ARGS__); \
	} while (0)

#define check(x) tap_check((x), #x, __FILE__, __LINE__)
/* Each argument is evaluated exactly once. */
#define check_int(a, op, b)                                            \
	({                                                             \
		intmax_t _ca = (a), _cb = (b);                         \
		tap_check_int(_ca op _cb, _ca, _cb, #a " " #op " " #b, \
			      __FILE__, __LINE__);                     \
	})
#define check_uint(a, op, b)                                            \
	({                                                              \
		uintmax_t _ca = (a), _cb = (b);                         \
		tap_check_uint(_ca op _cb, _ca, _cb, #a " " #op " " #b, \
			       __FILE__, __LINE__);                     \
	})
#define check_mem(a, b, len) \
	tap_check_mem((a), (b), (len), #a " == " #b, __FILE__, __LINE__)

void tap_test_begin(void);
void tap_test_end(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool tap_check(bool ok, const char *expr, const char *file, int line);
bool tap_check_int(bool ok, intmax_t a, intmax_t b, const char *expr,
		   const char *file, int line);
bool tap_check_uint(bool ok, uintmax_t a, uintmax_t b, const char *expr,
		    const char *file, int line);
bool tap_check_mem(const void *a, const void *b, size_t len, const char *expr,
		   const char *file, int line);
/* Print the plan; returns the exit status (0 if every test passed). */
int test_done(void);

#endif
