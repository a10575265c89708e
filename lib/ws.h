/* SPDX-License-Identifier: MIT */
/* WebSocket (RFC 6455) framing and the handshake's accept key: the
 * protocol logic the VNC tunnel needs on both sides (server/http_vnc.c,
 * tools/cmd-vnc.c), without I/O (ws_relay.h moves the bytes).
 *
 * Pure functions; any thread.
 */
#ifndef VMFERRY_WS_H
#define VMFERRY_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WS_VERSION     "13"
#define WS_HEADER_MAX  14 /* 2 + 8 (length) + 4 (mask) */
#define WS_ACCEPT_LEN  28 /* base64 of a SHA-1 */
#define WS_KEY_LEN     24 /* base64 of 16 bytes */
#define WS_CONTROL_MAX 125
#define WS_SUBPROTOCOL "binary" /* noVNC's */

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

/* Close codes (RFC 6455 7.4.1). */
#define WS_CLOSE_NORMAL	     1000
#define WS_CLOSE_GOING_AWAY  1001
#define WS_CLOSE_PROTOCOL    1002
#define WS_CLOSE_UNSUPPORTED 1003 /* a text frame: binary only here */
#define WS_CLOSE_TOO_BIG     1009

/* ws_parse() flags. */
#define WS_PARSE_MASKED	     1u /* frames from a client: must be masked */
#define WS_PARSE_BINARY_ONLY 2u /* text frames: -ENOTSUP */

struct ws_frame {
	unsigned opcode; /* enum ws_opcode */
	bool fin;
	size_t head_len; /* the payload starts at buf + head_len */
	uint64_t len;	 /* payload bytes */
};

/* The Sec-WebSocket-Accept value for a Sec-WebSocket-Key into out (room
 * for WS_ACCEPT_LEN + 1).  0, or -EINVAL when key is not the base64 of
 * 16 bytes (surrounding blanks are allowed). */
int ws_accept(const char *key, char *out);

/* A fresh random Sec-WebSocket-Key into out (room for WS_KEY_LEN + 1).
 * 0 or -EIO (no randomness). */
int ws_new_key(char *out);

/* One frame at the start of buf (len bytes).  Returns the frame's whole
 * length (header and payload) with *ret filled in and a masked payload
 * unmasked in place; 0 when buf holds less than one whole frame (read
 * more: truncation is not an error); -EPROTO for a frame RFC 6455
 * forbids: reserved bits set, an unknown opcode, a control frame that is
 * fragmented or longer than 125 bytes, a mask where flags say there must
 * be none or none where there must be one, a 64-bit length with its top
 * bit set; -EMSGSIZE when a data frame's payload is longer than max; -ENOTSUP for a
 * text frame with WS_PARSE_BINARY_ONLY.  *ret is written only when a
 * frame is returned. */
ssize_t ws_parse(uint8_t *buf, size_t len, unsigned flags, uint64_t max,
		 struct ws_frame *ret);

/* A final frame's header for a payload of len bytes into hdr (room for
 * WS_HEADER_MAX); with mask (4 bytes; NULL: unmasked), the caller masks
 * the payload with ws_mask().  Returns the header's length. */
size_t ws_header(uint8_t *hdr, unsigned opcode, uint64_t len,
		 const uint8_t *mask);

/* XOR buf with the 4-byte key (masking and unmasking are the same). */
void ws_mask(uint8_t *buf, size_t len, const uint8_t key[4]);

/* Is token one of the comma-separated values of a header (case-
 * insensitive, blanks around values ignored)?  ("Connection: keep-alive,
 * Upgrade" has "upgrade".)  value may be NULL (false). */
bool ws_header_has(const char *value, const char *token);

#endif
