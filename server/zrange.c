/* SPDX-License-Identifier: MIT */
/* Compressed transfer of a data range.  See zrange.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zstd.h>

#include "zrange.h"

/* Level 1: the fastest zstd level still finds what a disk image offers
 * (text, binaries, sparse runs inside a block); the server compresses on
 * every request. */
#define ZRANGE_LEVEL 1

bool zrange_accepted(const char *value)
{
	const char *p = value;

	if (!p)
		return false;
	/* A comma-separated token list, case-insensitive. */
	while (*p) {
		size_t n;

		p += strspn(p, " \t,");
		n = strcspn(p, " \t,;");
		if (n == 4 && strncasecmp(p, "zstd", 4) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

int zrange_compress(const void *raw, size_t len, void **ret, size_t *ret_len)
{
	size_t bound = ZSTD_compressBound(len), n;
	ZSTD_CCtx *cctx;
	void *out;

	*ret = NULL;
	*ret_len = 0;
	if (len == 0 || len > ZRANGE_MAX)
		return 0;
	out = malloc(bound);
	cctx = ZSTD_createCCtx();
	if (!out || !cctx) {
		free(out);
		ZSTD_freeCCtx(cctx);
		return -ENOMEM;
	}
	/* The frame carries its content's checksum: damage on the way is
	 * named as such, before the block hashes catch it anyway. */
	n = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, ZRANGE_LEVEL);
	if (!ZSTD_isError(n))
		n = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(n))
		n = ZSTD_compress2(cctx, out, bound, raw, len);
	ZSTD_freeCCtx(cctx);
	if (ZSTD_isError(n) || n > len - len / 16) {
		free(out);
		return 0;
	}
	*ret = out;
	*ret_len = n;
	return 1;
}
