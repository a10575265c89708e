/* SPDX-License-Identifier: MIT */
/* HTTP Range header parsing (RFC 9110 section 14), single range only.
 *
 * Pure functions; any thread.
 */
#ifndef VMFERRY_RANGE_H
#define VMFERRY_RANGE_H

#include <stdint.h>

/* A satisfiable byte range: [off, off + len), len >= 1. */
struct range {
	uint64_t off;
	uint64_t len;
};

/* Parse the value of one Range header against a representation of
 * total bytes.  Accepted forms ("bytes" is case-insensitive, no spaces
 * anywhere, plain decimal digits only):
 *   bytes=A-B   A <= B; B past the end is clamped to total - 1
 *   bytes=A-    from A to the end
 *   bytes=-N    the last N bytes (all of them if N > total)
 * Returns 0 and fills *ret, or
 *   -EINVAL      malformed (answer 400)
 *   -EOPNOTSUPP  more than one range, "bytes=0-1,5-6" (answer 400)
 *   -ERANGE      well-formed but unsatisfiable: A >= total, N == 0, or
 *                total == 0 (answer 416) */
int range_parse(const char *value, uint64_t total, struct range *ret);

#endif
