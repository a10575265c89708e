/* SPDX-License-Identifier: MIT */
/* SHA-256 of blocks, hex encoding, the zero-block test.
 *
 * Stateless; any thread.
 */
#ifndef VMFERRY_HASH_H
#define VMFERRY_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* The manifest marks a zero block with this all-zero hash. */
extern const uint8_t hash_zero[VMF_HASH_LEN];

/* SHA-256 of (buf, len) into out.  Cannot fail (aborts on an OpenSSL
 * internal error, which would mean a broken library). */
void hash_sha256(const void *buf, size_t len, uint8_t out[VMF_HASH_LEN]);

/* True if every byte of (buf, len) is zero. */
bool hash_is_zero_buf(const void *buf, size_t len);
/* True if h is the zero-block marker. */
bool hash_is_zero(const uint8_t h[VMF_HASH_LEN]);

/* Lower-case hex; out has room for 2*len+1 bytes. */
void hash_to_hex(const uint8_t *h, size_t len, char *out);
/* Parse exactly 2*len hex digits; returns 0 or -EINVAL. */
int hash_from_hex(const char *hex, uint8_t *out, size_t len);

#endif
