/* SPDX-License-Identifier: MIT */
/* WebSocket framing and accept key (see ws.h). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* The value without surrounding blanks: *ret_len bytes from the result. */
static const char *trim(const char *s, size_t len, size_t *ret_len)
{
	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	*ret_len = len;
	return s;
}

int ws_accept(const char *key, char *out)
{
	uint8_t raw[WS_KEY_LEN], digest[SHA_DIGEST_LENGTH];
	char buf[WS_KEY_LEN + sizeof(WS_GUID)];
	size_t n;
	const char *k = trim(key, strlen(key), &n);

	/* 16 bytes in base64: 22 characters and "==". */
	if (n != WS_KEY_LEN || k[22] != '=' || k[23] != '=' ||
	    EVP_DecodeBlock(raw, (const unsigned char *)k, WS_KEY_LEN) != 18)
		return -EINVAL;
	memcpy(buf, k, WS_KEY_LEN);
	memcpy(buf + WS_KEY_LEN, WS_GUID, sizeof(WS_GUID) - 1);
	SHA1((const unsigned char *)buf, WS_KEY_LEN + sizeof(WS_GUID) - 1,
	     digest);
	EVP_EncodeBlock((unsigned char *)out, digest, sizeof(digest));
	return 0;
}

int ws_new_key(char *out)
{
	uint8_t raw[16];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
	return 0;
}

void ws_mask(uint8_t *buf, size_t len, const uint8_t key[4])
{
	for (size_t i = 0; i < len; i++)
		buf[i] ^= key[i & 3];
}

ssize_t ws_parse(uint8_t *buf, size_t len, unsigned flags, uint64_t max,
		 struct ws_frame *ret)
{
	struct ws_frame f;
	size_t need = 2;
	uint64_t n;
	bool masked;

	if (len < 2)
		return 0;
	f.fin = buf[0] & 0x80;
	f.opcode = buf[0] & 0x0f;
	masked = buf[1] & 0x80;
	n = buf[1] & 0x7f;
	if (buf[0] & 0x70)
		return -EPROTO; /* no extension was negotiated */
	switch (f.opcode) {
	case WS_OP_TEXT:
		if (flags & WS_PARSE_BINARY_ONLY)
			return -ENOTSUP;
		break;
	case WS_OP_CONT:
	case WS_OP_BINARY:
		break;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		if (!f.fin || n > WS_CONTROL_MAX)
			return -EPROTO;
		break;
	default:
		return -EPROTO;
	}
	if (masked != !!(flags & WS_PARSE_MASKED))
		return -EPROTO;
	if (n == 126) {
		need += 2;
		if (len < need)
			return 0;
		n = (uint64_t)buf[2] << 8 | buf[3];
	} else if (n == 127) {
		need += 8;
		if (len < need)
			return 0;
		n = 0;
		for (int i = 0; i < 8; i++)
			n = n << 8 | buf[2 + i];
		if (n >> 63)
			return -EPROTO;
	}
	if (n > max && !(f.opcode & 0x8)) /* control frames: 125 at most */
		return -EMSGSIZE;
	if (masked)
		need += 4;
	if (len < need || len - need < n)
		return 0;
	if (masked)
		ws_mask(buf + need, (size_t)n, buf + need - 4);
	f.head_len = need;
	f.len = n;
	*ret = f;
	return (ssize_t)(need + n);
}

size_t ws_header(uint8_t *hdr, unsigned opcode, uint64_t len,
		 const uint8_t *mask)
{
	size_t n = 2;

	hdr[0] = 0x80 | (opcode & 0x0f);
	if (len < 126) {
		hdr[1] = (uint8_t)len;
	} else if (len <= 0xffff) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
		n = 4;
	} else {
		hdr[1] = 127;
		for (int i = 0; i < 8; i++)
			hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	if (mask) {
		hdr[1] |= 0x80;
		memcpy(hdr + n, mask, 4);
		n += 4;
	}
	return n;
}

bool ws_header_has(const char *value, const char *token)
{
	size_t tlen = strlen(token);

	while (value && *value) {
		size_t n = strcspn(value, ",");
		size_t vlen;
		const char *v = trim(value, n, &vlen);

		if (vlen == tlen && strncasecmp(v, token, tlen) == 0)
			return true;
		value += n;
		if (*value == ',')
			value++;
	}
	return false;
}
