/* SPDX-License-Identifier: MIT */
/* WebSocket relay (see ws_relay.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"
#include "util.h"
#include "util.h"
#include "ws.h"
#include "ws_relay.h"

#define WS_RELAY_CHUNK	 65536 /* plain side reads, one frame each */
#define WS_RELAY_SEND_MS 30000
/* A WebSocket silent this long gets a ping; one silent for
 * WS_RELAY_DEAD_S is gone (a viewer that vanished without a close,
 * which libmicrohttpd's TLS forwarding may never report). */
#define WS_RELAY_PING_S 15
#define WS_RELAY_DEAD_S 45
#define WS_RELAY_POLL_MS \
	250 /* TLS may hold bytes the socket no longer
				* shows: look again this often */

static ssize_t fd_recv(void *opaque, void *buf, size_t len)
{
	const struct ws_conn *c = opaque;
	ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);

	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

static ssize_t fd_send(void *opaque, const void *buf, size_t len)
{
	const struct ws_conn *c = opaque;
	ssize_t n = send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

void ws_conn_fd(struct ws_conn *c, int fd, bool client)
{
	c->fd = fd;
	c->recv = fd_recv;
	c->send = fd_send;
	c->opaque = c;
	c->client = client;
}

int ws_send_all(const struct ws_conn *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = c->send(c->opaque, p, len);
		struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE;
		if (n != -EAGAIN)
			return (int)n;
		n = poll(&pfd, 1, WS_RELAY_SEND_MS);
		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

/* One frame from buf (len <= WS_RELAY_CHUNK), which has WS_HEADER_MAX
 * bytes of room before it for the header; masks buf for a client. */
static int send_in_place(const struct ws_conn *c, unsigned opcode, uint8_t *buf,
			 size_t len)
{
	uint8_t hdr[WS_HEADER_MAX], key[4] = {0};
	size_t hlen;

	if (c->client && RAND_bytes(key, sizeof(key)) != 1)
		return -EIO;
	hlen = ws_header(hdr, opcode, len, c->client ? key : NULL);
	if (c->client)
		ws_mask(buf, len, key);
	memcpy(buf - hlen, hdr, hlen);
	return ws_send_all(c, buf - hlen, hlen + len);
}

int ws_send_frame(const struct ws_conn *c, unsigned opcode, const void *buf,
		  size_t len)
{
	uint8_t frame[WS_HEADER_MAX + WS_CONTROL_MAX];
	_cleanup_free_ uint8_t *big = NULL;
	uint8_t *p = frame;

	if (len > WS_CONTROL_MAX) {
		p = big = malloc(WS_HEADER_MAX + len);
		if (!big)
			return -ENOMEM;
	}
	if (len)
		memcpy(p + WS_HEADER_MAX, buf, len);
	return send_in_place(c, opcode, p + WS_HEADER_MAX, len);
}

static void send_close(const struct ws_conn *c, unsigned code)
{
	uint8_t body[2] = {(uint8_t)(code >> 8), (uint8_t)code};

	/* The end of the relay either way: nothing to do if it fails. */
	(void)ws_send_frame(c, WS_OP_CLOSE, body, sizeof(body));
}

static unsigned close_code(int r)
{
	switch (r) {
	case -EMSGSIZE:
		return WS_CLOSE_TOO_BIG;
	case -ENOTSUP:
		return WS_CLOSE_UNSUPPORTED;
	default:
		return WS_CLOSE_PROTOCOL;
	}
}

struct relay {
	const struct ws_conn *c;
	int plain;
	uint64_t max;
	uint8_t *in; /* WebSocket bytes not yet a whole frame */
	size_t in_len, in_cap;
	bool done; /* a close frame came (and was answered) */
	uint64_t last_rx_ns, last_ping_ns;
};

/* Handle the whole frames in r->in.  0, or -errno (a bad frame: the
 * close frame is sent here). */
static int frames(struct relay *r)
{
	unsigned flags =
	    (r->c->client ? 0 : WS_PARSE_MASKED) | WS_PARSE_BINARY_ONLY;
	size_t off = 0;
	int ret = 0;

	while (!r->done && ret == 0) {
		struct ws_frame f;
		ssize_t n =
		    ws_parse(r->in + off, r->in_len - off, flags, r->max, &f);
		uint8_t *payload = r->in + off + (n > 0 ? f.head_len : 0);

		if (n == 0)
			break;
		if (n < 0) {
			send_close(r->c, close_code((int)n));
			ret = (int)n;
			break;
		}
		off += (size_t)n;
		switch (f.opcode) {
		case WS_OP_CONT:
		case WS_OP_BINARY:
			ret = full_write(r->plain, payload, (size_t)f.len);
			break;
		case WS_OP_PING:
			ret = ws_send_frame(r->c, WS_OP_PONG, payload,
					    (size_t)f.len);
			break;
		case WS_OP_CLOSE:
			/* Echo its code (RFC 6455 5.5.1), then stop. */
			(void)ws_send_frame(r->c, WS_OP_CLOSE, payload,
					    f.len >= 2 ? 2 : 0);
			log_debug(LOG_CAT_HTTP, "WebSocket: a close frame");
			r->done = true;
			break;
		default: /* a pong: nothing to do */
			break;
		}
	}
	memmove(r->in, r->in + off, r->in_len - off);
	r->in_len -= off;
	return ret;
}

/* Read what the WebSocket has and handle it.  0, 1 at its end, or
 * -errno. */
static int from_ws(struct relay *r)
{
	for (;;) {
		ssize_t n = r->c->recv(r->c->opaque, r->in + r->in_len,
				       r->in_cap - r->in_len);
		int ret;

		if (n == -EAGAIN)
			return 0;
		if (n == 0) {
			log_debug(LOG_CAT_HTTP, "WebSocket: the peer is gone");
			return 1;
		}
		if (n < 0)
			return (int)n;
		r->last_rx_ns = now_ns();
		r->in_len += (size_t)n;
		ret = frames(r);
		if (ret < 0)
			return ret;
		if (r->done)
			return 1;
	}
}

/* Ping a silent WebSocket; -ETIMEDOUT when it stayed silent. */
static int keepalive(struct relay *r)
{
	uint64_t now = now_ns();

	if (now - r->last_rx_ns > WS_RELAY_DEAD_S * 1000000000ull) {
		log_debug(LOG_CAT_HTTP, "WebSocket: silent for %d s",
			  WS_RELAY_DEAD_S);
		send_close(r->c, WS_CLOSE_GOING_AWAY);
		return -ETIMEDOUT;
	}
	if (now - r->last_rx_ns < WS_RELAY_PING_S * 1000000000ull ||
	    now - r->last_ping_ns < WS_RELAY_PING_S * 1000000000ull)
		return 0;
	r->last_ping_ns = now;
	return ws_send_frame(r->c, WS_OP_PING, "vmferry", 7);
}

int ws_relay(const struct ws_conn *c, int plain, const void *initial,
	     size_t initial_len, uint64_t max_frame)
{
	_cleanup_free_ uint8_t *in = NULL, *out = NULL;
	struct relay r = {.c = c, .plain = plain, .max = max_frame};
	int ret = 0;

	/* Room for the longest frame, so that a recv() always has some. */
	r.in_cap = (size_t)max_frame + WS_HEADER_MAX;
	if (initial_len > r.in_cap)
		r.in_cap = initial_len;
	in = r.in = malloc(r.in_cap);
	out = malloc(WS_HEADER_MAX + WS_RELAY_CHUNK);
	if (!in || !out)
		return -ENOMEM;
	r.last_rx_ns = r.last_ping_ns = now_ns();
	if (initial_len) {
		memcpy(r.in, initial, initial_len);
		r.in_len = initial_len;
		ret = frames(&r);
	}
	while (ret == 0 && !r.done) {
		struct pollfd pfd[2] = {
		    {.fd = c->fd, .events = POLLIN},
		    {.fd = plain, .events = POLLIN},
		};
		ssize_t n;

		if (poll(pfd, 2, WS_RELAY_POLL_MS) < 0 && errno != EINTR)
			return -errno;
		ret = from_ws(&r);
		if (ret != 0)
			break;
		ret = keepalive(&r);
		if (ret != 0)
			break;
		if (!(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(plain, out + WS_HEADER_MAX, WS_RELAY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The other end is gone (or was shut down). */
			ret = n == 0 ? 0 : -errno;
			log_debug(LOG_CAT_HTTP, "WebSocket: the stream ended");
			send_close(c, n == 0 ? WS_CLOSE_NORMAL
					     : WS_CLOSE_GOING_AWAY);
			return ret;
		}
		ret = send_in_place(c, WS_OP_BINARY, out + WS_HEADER_MAX,
				    (size_t)n);
	}
	return ret > 0 ? 0 : ret;
}
