/* SPDX-License-Identifier: MIT */
/* Relaying a byte stream over a WebSocket: binary frames one way, their
 * payloads the other (the VNC tunnel's both ends).  The WebSocket side
 * is reached through send/recv functions, so that the server can use
 * libmicrohttpd's socket and the client libcurl's TLS connection.
 *
 * One relay is one call of ws_relay(), on the caller's thread, which it
 * blocks.  Another thread ends it with shutdown(plain, SHUT_RDWR).
 */
#ifndef VMFERRY_WS_RELAY_H
#define VMFERRY_WS_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ws_conn {
	int fd; /* what to poll for the WebSocket side */
	/* n > 0, 0 at the end, -EAGAIN when nothing is ready now, or
	 * -errno.  Neither blocks. */
	ssize_t (*recv)(void *opaque, void *buf, size_t len);
	ssize_t (*send)(void *opaque, const void *buf, size_t len);
	void *opaque;
	bool client; /* mask what is sent; expect unmasked frames */
};

/* c for a plain non-blocking socket fd (opaque is set to c itself). */
void ws_conn_fd(struct ws_conn *c, int fd, bool client);

/* Relay between the WebSocket c and the stream socket plain until either
 * ends, a close frame, a bad frame or shutdown(plain).  A WebSocket
 * silent for 15 s is pinged; one silent for 45 s is taken for gone.  initial: bytes
 * already received on c (may be NULL).  Frames longer than max_frame
 * are refused; text frames too (binary only).  The WebSocket gets a
 * close frame saying why, as far as it can be sent.  Returns 0 for an
 * orderly end (either side closed), -EPROTO, -EMSGSIZE or -ENOTSUP for
 * a bad frame, -ETIMEDOUT when the WebSocket took nothing sent for 30 s
 * or was silent, or an I/O -errno.  Does not close anything. */
int ws_relay(const struct ws_conn *c, int plain, const void *initial,
	     size_t initial_len, uint64_t max_frame);

/* Send all of buf on c, waiting (poll) when it is full, at most 30 s.
 * 0 or -errno. */
int ws_send_all(const struct ws_conn *c, const void *buf, size_t len);

/* Send one frame (masked if c->client).  0 or -errno. */
int ws_send_frame(const struct ws_conn *c, unsigned opcode, const void *buf,
		  size_t len);

#endif
