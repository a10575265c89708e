/* SPDX-License-Identifier: MIT */
/* Compressed transfer of a data range (docs/protocol.md, "Compressed
 * transfer"): the bytes of a range, zstd-compressed into one frame when
 * that saves enough to be worth the client's time.
 *
 * Stateless; any thread (each call has its own compression context).
 */
#ifndef VMFERRY_ZRANGE_H
#define VMFERRY_ZRANGE_H

#include <stdbool.h>
#include <stddef.h>

/* Largest range compressed (bytes): larger ones are sent as they are,
 * streamed, so that a request's memory stays bounded. */
#define ZRANGE_MAX (4u * 1024 * 1024)

/* Does an Accept header value (Vmferry-Accept-Encoding) list zstd? */
bool zrange_accepted(const char *value);

/* Compress raw[0..len) into a new buffer.  Returns 1 with *ret (caller
 * frees) and *ret_len when the frame is at most 15/16 of len, 0 when it
 * would not save that much (nothing allocated), -ENOMEM. */
int zrange_compress(const void *raw, size_t len, void **ret, size_t *ret_len);

#endif
