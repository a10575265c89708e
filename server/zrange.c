/* SPDX-License-Identifier: MIT */
/* Compressed transfer of a data range.  See zrange.h. */
#include <errno.h>
#include <stdint.h>
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

/* Sampling before compressing a long range: ZRANGE_SAMPLES pieces of
 * ZRANGE_SAMPLE bytes spread over it.  Random-looking data (encrypted or
 * already compressed guest files) is common in images, and compressing
 * megabytes only to send them raw cost the server a sixth of its CPU on
 * a sequential read. */
#define ZRANGE_SAMPLE  (16u * 1024)
#define ZRANGE_SAMPLES 4

/* Whether some sample of raw compresses by at least 1/16. */
static bool worth_trying(ZSTD_CCtx *cctx, const uint8_t *raw, size_t len)
{
	size_t bound = ZSTD_compressBound(ZRANGE_SAMPLE);
	uint8_t *out;
	bool worth = false;

	if (len < 4 * ZRANGE_SAMPLES * ZRANGE_SAMPLE)
		return true; /* the samples would cost as much as the try */
	out = malloc(bound);
	if (!out)
		return true;
	for (unsigned i = 0; i < ZRANGE_SAMPLES && !worth; i++) {
		size_t at = (len - ZRANGE_SAMPLE) / (ZRANGE_SAMPLES - 1) * i;
		size_t n = ZSTD_compressCCtx(cctx, out, bound, raw + at,
					     ZRANGE_SAMPLE, ZRANGE_LEVEL);

		worth =
		    !ZSTD_isError(n) && n <= ZRANGE_SAMPLE - ZRANGE_SAMPLE / 16;
	}
	free(out);
	return worth;
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
	if (!worth_trying(cctx, raw, len)) {
		free(out);
		ZSTD_freeCCtx(cctx);
		return 0;
	}
	/* Back to defaults after the samples; cannot fail here. */
	(void)ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
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
