/* SPDX-License-Identifier: MIT */
/* SHA-256 helpers. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hash.h"

const uint8_t hash_zero[VMF_HASH_LEN];

void hash_sha256(const void *buf, size_t len, uint8_t out[VMF_HASH_LEN])
{
	unsigned int n = 0;

	if (!EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) ||
	    n != VMF_HASH_LEN)
		abort(); /* only on a broken OpenSSL */
}

bool hash_is_zero_buf(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* Compare the first 16 bytes by hand, then the rest against
	 * itself shifted: memcmp is vectorised and fast. */
	for (size_t i = 0; i < len && i < 16; i++)
		if (p[i])
			return false;
	return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

bool hash_is_zero(const uint8_t h[VMF_HASH_LEN])
{
	return memcmp(h, hash_zero, VMF_HASH_LEN) == 0;
}

void hash_to_hex(const uint8_t *h, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[h[i] >> 4];
		out[2 * i + 1] = digits[h[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hash_from_hex(const char *hex, uint8_t *out, size_t len)
{
	if (strlen(hex) != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
