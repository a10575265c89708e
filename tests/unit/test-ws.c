/* SPDX-License-Identifier: MIT */
/* Unit tests for lib/ws.c: the accept key (RFC 6455's own example),
 * frames of each length form, masking, and every bad frame the relay
 * must refuse; truncated frames ask for more. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "tap.h"
#include "ws.h"

static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};

static void test_accept(void)
{
	char out[WS_ACCEPT_LEN + 1];

	/* RFC 6455 section 1.3. */
	check_int(ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out), ==, 0);
	check(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
	check_int(ws_accept(" dGhlIHNhbXBsZSBub25jZQ== ", out), ==, 0);
	check_int(ws_accept("", out), ==, -EINVAL);
	check_int(ws_accept("dGhlIHNhbXBsZSBub25jZQ=", out), ==, -EINVAL);
	check_int(ws_accept("dGhlIHNhbXBsZSBub25jZQ===", out), ==, -EINVAL);
	check_int(ws_accept("dGhlIHNhbXBsZSBub2!jZQ==", out), ==, -EINVAL);
	check_int(ws_accept("dGhlIHNhbXBsZSBub25jZQAA", out), ==, -EINVAL);
}

static void test_new_key(void)
{
	char k1[WS_KEY_LEN + 1], k2[WS_KEY_LEN + 1], out[WS_ACCEPT_LEN + 1];

	check_int(ws_new_key(k1), ==, 0);
	check_int(ws_new_key(k2), ==, 0);
	check_uint(strlen(k1), ==, WS_KEY_LEN);
	check(strcmp(k1, k2) != 0);
	check_int(ws_accept(k1, out), ==, 0);
}

/* A frame of len payload bytes built by ws_header (masked or not) parses
 * back to the same payload. */
static void roundtrip(uint64_t len, bool masked, size_t want_head)
{
	static uint8_t buf[70000 + WS_HEADER_MAX], payload[70000];
	struct ws_frame f = {0};
	size_t h;

	for (size_t i = 0; i < len; i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	h = ws_header(buf, WS_OP_BINARY, len, masked ? key : NULL);
	check_uint(h, ==, want_head);
	memcpy(buf + h, payload, len);
	if (masked)
		ws_mask(buf + h, len, key);
	/* Every proper prefix is "read more". */
	check_int(ws_parse(buf, 0, masked, 1 << 20, &f), ==, 0);
	check_int(ws_parse(buf, 1, masked, 1 << 20, &f), ==, 0);
	check_int(ws_parse(buf, h - 1, masked, 1 << 20, &f), ==, 0);
	if (len)
		check_int(ws_parse(buf, h + len - 1, masked, 1 << 20, &f), ==,
			  0);
	check_int(ws_parse(buf, h + len + 3, masked, 1 << 20, &f), ==,
		  (ssize_t)(h + len));
	check_uint(f.opcode, ==, WS_OP_BINARY);
	check(f.fin);
	check_uint(f.head_len, ==, h);
	check_uint(f.len, ==, len);
	check_mem(buf + h, payload, len);
}

static void test_lengths(void)
{
	roundtrip(0, true, 6);
	roundtrip(1, false, 2);
	roundtrip(125, true, 6);
	roundtrip(126, true, 8);
	roundtrip(65535, false, 4);
	roundtrip(65536, true, 14);
	roundtrip(69999, false, 10);
}

static ssize_t parse(const uint8_t *frame, size_t len, unsigned flags)
{
	uint8_t buf[64];
	struct ws_frame f;

	memcpy(buf, frame, len);
	return ws_parse(buf, len, flags, 1000, &f);
}

static void test_bad(void)
{
	const unsigned C = WS_PARSE_MASKED, B = WS_PARSE_BINARY_ONLY;
	/* A client's frame without a mask, a server's with one. */
	static const uint8_t unmasked[] = {0x82, 0x01, 'x'};
	static const uint8_t masked[] = {0x82, 0x81, 1, 2, 3, 4, 'x'};
	/* RSV1, RSV2, RSV3. */
	static const uint8_t rsv1[] = {0xc2, 0x80, 1, 2, 3, 4};
	static const uint8_t rsv2[] = {0xa2, 0x80, 1, 2, 3, 4};
	static const uint8_t rsv3[] = {0x92, 0x80, 1, 2, 3, 4};
	/* Opcodes 3 and 0xb are reserved. */
	static const uint8_t op3[] = {0x83, 0x80, 1, 2, 3, 4};
	static const uint8_t opb[] = {0x8b, 0x80, 1, 2, 3, 4};
	/* A ping not final; a close of 126 bytes. */
	static const uint8_t frag_ping[] = {0x09, 0x80, 1, 2, 3, 4};
	static const uint8_t big_close[] = {0x88, 0xfe, 0, 126};
	/* Longer than the maximum (1000): 16-bit and 64-bit forms. */
	static const uint8_t big16[] = {0x82, 0xfe, 0x03, 0xe9};
	static const uint8_t big64[] = {0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0};
	static const uint8_t top64[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1};
	/* Text, when only binary is taken. */
	static const uint8_t text[] = {0x81, 0x81, 1, 2, 3, 4, 'x' ^ 1};

	check_int(parse(unmasked, sizeof(unmasked), C), ==, -EPROTO);
	check_int(parse(unmasked, sizeof(unmasked), 0), ==, 3);
	check_int(parse(masked, sizeof(masked), 0), ==, -EPROTO);
	check_int(parse(masked, sizeof(masked), C), ==, 7);
	check_int(parse(rsv1, sizeof(rsv1), C), ==, -EPROTO);
	check_int(parse(rsv2, sizeof(rsv2), C), ==, -EPROTO);
	check_int(parse(rsv3, sizeof(rsv3), C), ==, -EPROTO);
	check_int(parse(op3, sizeof(op3), C), ==, -EPROTO);
	check_int(parse(opb, sizeof(opb), C), ==, -EPROTO);
	check_int(parse(frag_ping, sizeof(frag_ping), C), ==, -EPROTO);
	check_int(parse(big_close, sizeof(big_close), C), ==, -EPROTO);
	check_int(parse(big16, sizeof(big16), C), ==, -EMSGSIZE);
	check_int(parse(big64, sizeof(big64), C), ==, -EMSGSIZE);
	check_int(parse(top64, sizeof(top64), C), ==, -EPROTO);
	check_int(parse(text, sizeof(text), C | B), ==, -ENOTSUP);
	check_int(parse(text, sizeof(text), C), ==, 7);
	/* Truncated bad frames are refused as soon as the header shows. */
	check_int(parse(rsv1, 1, C), ==, 0);
	check_int(parse(rsv1, 2, C), ==, -EPROTO);
}

static void test_control(void)
{
	uint8_t buf[WS_HEADER_MAX + 8];
	struct ws_frame f;
	size_t h = ws_header(buf, WS_OP_PING, 3, key);

	memcpy(buf + h, "abc", 3);
	ws_mask(buf + h, 3, key);
	check_int(ws_parse(buf, h + 3, WS_PARSE_MASKED, 0, &f), ==,
		  (ssize_t)(h + 3)); /* control frames ignore max... */
	check_uint(f.opcode, ==, WS_OP_PING);
	check_mem(buf + h, "abc", 3);
	/* ...but data frames do not. */
	h = ws_header(buf, WS_OP_CONT, 1, key);
	check_int(ws_parse(buf, h + 1, WS_PARSE_MASKED, 0, &f), ==, -EMSGSIZE);
}

static void test_header_has(void)
{
	check(ws_header_has("Upgrade", "upgrade"));
	check(ws_header_has("keep-alive, Upgrade", "upgrade"));
	check(ws_header_has(" websocket ", "WebSocket"));
	check(!ws_header_has("keep-alive", "upgrade"));
	check(!ws_header_has("upgrades", "upgrade"));
	check(!ws_header_has("", "upgrade"));
	check(!ws_header_has(NULL, "upgrade"));
	check(ws_header_has("chat, binary", WS_SUBPROTOCOL));
}

int main(void)
{
	TEST(test_accept(), "accept key: RFC 6455's example; bad keys");
	TEST(test_new_key(), "new keys are random and valid");
	TEST(test_lengths(), "7-, 16- and 64-bit lengths, masked or not");
	TEST(test_bad(), "bad frames: mask, reserved bits, opcodes, sizes");
	TEST(test_control(), "control frames; the maximum is for data");
	TEST(test_header_has(), "header token lists");
	return test_done();
}
