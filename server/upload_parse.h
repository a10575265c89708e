/* SPDX-License-Identifier: MIT */
/* Request bodies as they arrive: the size limit of a write route, the
 * list of hashes of POST /v1/blocks/missing and the manifest of a
 * commit, whose header says how long the whole upload must be.
 *
 * Pure: no libmicrohttpd, no I/O, no allocation.  http_write.c stores
 * the bytes and answers; this module decides whether they are
 * acceptable, so that the decision can be fuzzed alone
 * (tests/fuzz/fuzz-upload.c).  One struct upload_parse per request; not
 * shared between threads.
 */
#ifndef VMFERRY_UPLOAD_PARSE_H
#define VMFERRY_UPLOAD_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "manifest.h"

#include "route.h"

struct upload_parse {
	enum route_id route;
	uint64_t max; /* the most body bytes the route accepts */
	uint64_t len; /* body bytes accepted so far */
	/* ROUTE_COMMIT: the manifest's size by its header, 0 until the
	 * header is in; and the header's bytes as they arrive. */
	uint64_t expect;
	uint8_t head[MANIFEST_HEADER_SIZE];
	int error; /* the first error, returned again by every later call */
};

/* Start checking a body for route, of at most max bytes. */
void upload_parse_init(struct upload_parse *u, enum route_id route,
		       uint64_t max);

/* Check the Content-Length header's value (NULL if absent) before the
 * body arrives.  Returns 0 (absent, or acceptable), -EINVAL (not a
 * plain decimal number), -EFBIG (above u->max) or, for ROUTE_MISSING,
 * -EBADMSG (not a whole number of hashes). */
int upload_parse_length(const struct upload_parse *u, const char *value);

/* The next len bytes of the body, before the caller stores them.
 * Returns 0 if they may be stored, or the upload's error: -EFBIG (the
 * body would pass u->max); for ROUTE_COMMIT -EBADMSG (the manifest
 * header, once its MANIFEST_HEADER_SIZE bytes are in, does not parse)
 * or -EMSGSIZE (the body would be longer than the header says:
 * u->expect bytes).  Once it has failed, the upload stays failed. */
int upload_parse_add(struct upload_parse *u, const uint8_t *buf, size_t len);

/* The body is complete.  Returns 0 or -EBADMSG: for ROUTE_MISSING if
 * the body is not a whole number of VMF_HASH_LEN-byte hashes (then
 * u->len / VMF_HASH_LEN is the count), for ROUTE_COMMIT unless it is
 * exactly as long as its header says (the hashes themselves are the
 * commit's to check).  Or the error upload_parse_add() returned. */
int upload_parse_finish(const struct upload_parse *u);

#endif
