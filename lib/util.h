/* SPDX-License-Identifier: MIT */
/* Small parsers and formatters used by every program.  Stateless. */
#ifndef VMFERRY_UTIL_H
#define VMFERRY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse a decimal number with an optional K/M/G/T suffix (powers of
 * 1024; an optional trailing "iB" or "B").  Returns 0 or -EINVAL
 * (garbage, empty) or -ERANGE (overflow). */
int parse_size(const char *s, uint64_t *ret);

/* Parse a plain decimal uint64_t; 0, -EINVAL or -ERANGE. */
int parse_u64(const char *s, uint64_t *ret);

/* Parse a duration: a number with an optional s/m/h/d suffix (seconds
 * without one); result in seconds. */
int parse_duration(const char *s, uint64_t *ret);

/* "1.5 GiB"-style into buf. */
void format_bytes(uint64_t n, char *buf, size_t len);

/* Unix time t as "2024-05-01T10:00:00Z" (UTC) into buf (at least 21
 * bytes); the decimal number if it cannot be shown so. */
void format_utc(int64_t t, char *buf, size_t len);

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);
/* Wall clock in seconds. */
int64_t now_wall(void);

/* True if name is a valid image name (see proto.h). */
bool image_name_valid(const char *name);

/* Remove trailing white space in place (token files end in '\n'). */
void strip_trailing_space(char *s);

#endif
