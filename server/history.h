/* SPDX-License-Identifier: MIT */
/* Version history: what each commit did.
 *
 * A commit writes images/NAME/versions/N.json before its commit point:
 *   {"time": UNIX, "author": "token label", "blocks_changed": K,
 *    "bytes_added": B}
 * blocks_changed counts the entries of N's manifest whose hash differs
 * from version N-1's at the same index (every entry for version 1, or
 * when the block size changed); bytes_added sums the lengths of those
 * whose new hash is not the zero hash.  Versions committed before this
 * file existed have none: their time is the manifest's mtime and the
 * rest is unknown.  Any thread; blocks on disk I/O.
 */
#ifndef VMFERRY_HISTORY_H
#define VMFERRY_HISTORY_H

#include <stdint.h>

#include <jansson.h>

#include "manifest.h"

struct versions;

/* For commit.c, under the image lock, with version n-1 current: record
 * version n, whose manifest (header h) is open as fd.  author is
 * borrowed. */
int history_record(struct versions *v, const char *name, uint64_t n, int fd,
		   const struct manifest_header *h, const char *author);

/* The committed versions of name, ascending, as a new JSON array of
 * {"version", "time", "author", "blocks_changed", "bytes_added"}; the
 * last three are absent when unknown.  Errors as versions_numbers(). */
int history_list(struct versions *v, const char *name, json_t **ret);

#endif
