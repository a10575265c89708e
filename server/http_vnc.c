/* SPDX-License-Identifier: MIT */
/* The VNC WebSocket (see http_vnc.h).
 *
 * A relay is prepared by the handler (QEMU's socket connected, its slot
 * counted), handed to libmicrohttpd as the upgrade callback's closure,
 * and started by that callback on a thread of its own.  Threads are
 * joined by whoever next takes the lock after they finished
 * (reap_locked()) or by http_vnc_stop().  Lock: s->lock, never held
 * across I/O or a join of a thread still running.  The tickets for
 * browsers (vnc_ticket.h) have their own lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "mutex.h"
#include "thread.h"
#include "ws.h"
#include "ws_relay.h"

#include "auth.h"
#include "http_vnc.h"
#include "vm.h"
#include "vnc_ticket.h"

struct relay {
	struct http_vnc *set;
	struct relay *next;
	char name[VMF_NAME_MAX + 1];
	int vnc_fd; /* QEMU's VNC socket */
	/* From the upgrade callback on: */
	struct MHD_UpgradeResponseHandle *urh;
	int sock; /* libmicrohttpd's end of the client's connection */
	uint8_t *extra;
	size_t extra_len;
	pthread_t thread;
	bool started;
	bool finished; /* protected by set->lock */
};

struct http_vnc {
	pthread_mutex_t lock;
	/* protected by lock: */
	struct relay *relays; /* prepared, running or finished */
	bool stopping;
	struct vnc_tickets *tickets; /* its own lock */
	uint64_t ticket_ms;	     /* a ticket's lifetime */
};

int http_vnc_new(unsigned ticket_s, struct http_vnc **ret)
{
	struct http_vnc *s = calloc(1, sizeof(*s));

	if (!s || vnc_tickets_new(&s->tickets) < 0) {
		free(s);
		return -ENOMEM;
	}
	s->ticket_ms = 1000ull * (ticket_s ? ticket_s : HTTP_VNC_TICKET_S);
	if (pthread_mutex_init(&s->lock, NULL) != 0)
		abort();
	*ret = s;
	return 0;
}

/* Monotonic milliseconds: a ticket's clock, which no clock change
 * moves. */
static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int http_vnc_ticket_take(struct http_vnc *s, const char *name, const char *hex,
			 uint8_t ret_token_hash[VMF_HASH_LEN])
{
	return vnc_ticket_take(s->tickets, name, hex, now_ms(), ret_token_hash);
}

enum MHD_Result http_vnc_ticket(struct http_request *req)
{
	struct http_vnc *s = req->ctx->vnc;
	char hex[VNC_TICKET_HEX_LEN + 1];
	struct vm_status st;
	enum MHD_Result ret;
	int r = vms_status(req->ctx->vms, req->name, &st);

	if (r == -ENOENT)
		return http_reply_error(
		    req, 404, "image %s has not run on this server", req->name);
	if (r < 0 || st.state != VM_RUNNING)
		return http_reply_error(req, 409,
					"image %s is not running on the server",
					req->name);
	r = vnc_ticket_issue(s->tickets, req->name, req->token_hash, now_ms(),
			     s->ticket_ms, hex);
	if (r == -ENOSPC)
		return http_reply_error_ex(req, 503, NULL, "Retry-After", "5",
					   "too many VNC tickets (at most %d "
					   "at once): retry",
					   VNC_TICKET_MAX);
	if (r < 0)
		return http_reply_error(req, 500, "server error");
	log_info("image %s: a VNC ticket for token %s", req->name,
		 req->token->id);
	ret =
	    http_reply_json(req, 200,
			    json_pack("{s:s, s:I}", "ticket", hex, "expires_in",
				      (json_int_t)(s->ticket_ms / 1000)),
			    "no-store");
	OPENSSL_cleanse(hex, sizeof(hex));
	return ret;
}

static void relay_free(struct relay *r)
{
	if (r->vnc_fd >= 0)
		close(r->vnc_fd);
	free(r->extra);
	free(r);
}

/* Unlink r from s (s->lock held). */
static void unlink_locked(struct http_vnc *s, struct relay *r)
{
	for (struct relay **p = &s->relays; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			return;
		}
}

/* Take the finished relays out of s (s->lock held): the caller joins
 * and frees them, without the lock. */
static struct relay *reap_locked(struct http_vnc *s)
{
	struct relay *done = NULL, **p = &s->relays;

	while (*p) {
		struct relay *r = *p;

		if (r->finished) {
			*p = r->next;
			r->next = done;
			done = r;
		} else {
			p = &r->next;
		}
	}
	return done;
}

static void join_all(struct relay *r)
{
	while (r) {
		struct relay *next = r->next;

		pthread_join(r->thread, NULL);
		relay_free(r);
		r = next;
	}
}

static void *relay_main(void *opaque)
{
	struct relay *r = opaque;
	struct ws_conn c;
	int ret;

	ws_conn_fd(&c, r->sock, false);
	ret =
	    ws_relay(&c, r->vnc_fd, r->extra, r->extra_len, HTTP_VNC_FRAME_MAX);
	if (ret < 0)
		log_info("image %s: a VNC viewer's connection ended: %s",
			 r->name, strerror(-ret));
	else
		log_debug(LOG_CAT_HTTP, "image %s: a VNC viewer left", r->name);
	/* libmicrohttpd closes sock and the connection. */
	(void)MHD_upgrade_action(r->urh, MHD_UPGRADE_ACTION_CLOSE);
	mutex_lock(&r->set->lock);
	r->finished = true;
	mutex_unlock(&r->set->lock);
	return NULL;
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls,
		       const char *extra_in, size_t extra_in_size,
		       MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct relay *r = cls;
	struct http_request *req = con_cls;
	struct http_vnc *s = r->set;
	bool stopping;

	(void)conn;
	req->vnc = NULL; /* the relay's own now */
	req->upgraded = true;
	r->urh = urh;
	r->sock = sock;
	if (extra_in_size) {
		r->extra = malloc(extra_in_size);
		if (r->extra) {
			memcpy(r->extra, extra_in, extra_in_size);
			r->extra_len = extra_in_size;
		}
	}
	mutex_lock(&s->lock);
	stopping = s->stopping;
	if (!stopping && (!extra_in_size || r->extra) &&
	    thread_start(&r->thread, relay_main, r, "vnc") == 0)
		r->started = true;
	if (!r->started)
		unlink_locked(s, r);
	mutex_unlock(&s->lock);
	if (r->started)
		return;
	(void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
	relay_free(r);
}

/* A slot for a relay of name: a new prepared relay in the set, or
 * -EMFILE (HTTP_VNC_PER_IMAGE already), -ESHUTDOWN (stopping). */
static int prepare(struct http_vnc *s, const char *name, int vnc_fd,
		   struct relay **ret)
{
	struct relay *r = calloc(1, sizeof(*r)), *done;
	unsigned n = 0;
	int err = 0;

	if (!r)
		return -ENOMEM;
	r->set = s;
	r->vnc_fd = vnc_fd;
	r->sock = -1;
	snprintf(r->name, sizeof(r->name), "%s", name);
	mutex_lock(&s->lock);
	done = reap_locked(s);
	for (struct relay *p = s->relays; p; p = p->next)
		n += strcmp(p->name, name) == 0;
	if (s->stopping)
		err = -ESHUTDOWN;
	else if (n >= HTTP_VNC_PER_IMAGE)
		err = -EMFILE;
	if (!err) {
		r->next = s->relays;
		s->relays = r;
	}
	mutex_unlock(&s->lock);
	join_all(done);
	if (err) {
		r->vnc_fd = -1; /* the caller's still */
		relay_free(r);
		return err;
	}
	*ret = r;
	return 0;
}

/* Drop a prepared relay that was never started. */
static void unprepare(struct http_vnc *s, struct relay *r)
{
	mutex_lock(&s->lock);
	unlink_locked(s, r);
	mutex_unlock(&s->lock);
	relay_free(r);
}

void http_vnc_request_done(struct http_request *req)
{
	if (req->vnc)
		unprepare(req->ctx->vnc, req->vnc);
	req->vnc = NULL;
}

void http_vnc_stop(struct http_vnc *s)
{
	struct relay *all;

	if (!s)
		return;
	mutex_lock(&s->lock);
	s->stopping = true;
	/* Each relay sees its VNC side end, says so to its viewer with a
	 * close frame and finishes. */
	for (struct relay *r = s->relays; r; r = r->next)
		if (r->started)
			(void)shutdown(r->vnc_fd, SHUT_RDWR);
	mutex_unlock(&s->lock);
	for (;;) {
		bool running = false;

		mutex_lock(&s->lock);
		all = reap_locked(s);
		for (struct relay *r = s->relays; r; r = r->next)
			running |= r->started;
		mutex_unlock(&s->lock);
		join_all(all);
		if (!running)
			break;
		usleep(10000);
	}
}

void http_vnc_free(struct http_vnc *s)
{
	if (!s)
		return;
	/* Only prepared relays can be left (their requests never
	 * completed): free them. */
	while (s->relays) {
		struct relay *r = s->relays;

		s->relays = r->next;
		relay_free(r);
	}
	vnc_tickets_free(s->tickets);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Is the request a WebSocket opening handshake?  0, or the status to
 * refuse it with (its message in *why). */
static unsigned check_upgrade(struct http_request *req, char *accept,
			      const char **why)
{
	const char *key = http_header(req, "Sec-WebSocket-Key");
	const char *version = http_header(req, "Sec-WebSocket-Version");

	*why = "not a WebSocket upgrade (want: GET with Upgrade: websocket, "
	       "Connection: Upgrade, Sec-WebSocket-Key, "
	       "Sec-WebSocket-Version: 13)";
	if (strcmp(req->method, MHD_HTTP_METHOD_GET) != 0 ||
	    !ws_header_has(http_header(req, "Upgrade"), "websocket") ||
	    !ws_header_has(http_header(req, "Connection"), "upgrade") || !key)
		return 400;
	if (ws_accept(key, accept) < 0) {
		*why = "invalid Sec-WebSocket-Key (want: base64 of 16 bytes)";
		return 400;
	}
	if (!version || strcmp(version, WS_VERSION) != 0) {
		*why = "unsupported WebSocket version (want: 13)";
		return 426;
	}
	return 0;
}

enum MHD_Result http_vnc_open(struct http_request *req)
{
	char accept[WS_ACCEPT_LEN + 1];
	struct MHD_Response *resp;
	struct relay *r = NULL;
	const char *why;
	unsigned status = check_upgrade(req, accept, &why);
	int fd = -1, err;

	if (status == 426)
		return http_reply_error_ex(req, 426, NULL,
					   "Sec-WebSocket-Version", WS_VERSION,
					   "%s", why);
	if (status)
		return http_reply_error(req, status, "%s", why);
	err = vms_vnc_connect(req->ctx->vms, req->name, &fd);
	if (err == -ENOENT)
		return http_reply_error(
		    req, 404, "image %s has not run on this server", req->name);
	if (err == -ENOTCONN)
		return http_reply_error(req, 409,
					"image %s is not running on the server",
					req->name);
	if (err == -EAGAIN)
		return http_reply_error_ex(req, 503, NULL, "Retry-After", "1",
					   "the display of %s is not ready yet",
					   req->name);
	if (err < 0) {
		log_error_errno(err, "image %s: the VNC socket: %m", req->name);
		return http_reply_error(req, 500, "server error");
	}
	err = prepare(req->ctx->vnc, req->name, fd, &r);
	if (err < 0) {
		close(fd);
		if (err == -EMFILE)
			return http_reply_error(
			    req, 503, "too many VNC viewers of %s (at most %d)",
			    req->name, HTTP_VNC_PER_IMAGE);
		return http_reply_error(req, 503, "%s",
					err == -ENOMEM
					    ? "server out of memory"
					    : "the server is stopping");
	}
	resp = MHD_create_response_for_upgrade(on_upgrade, r);
	if (!resp ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE,
				    "websocket") != MHD_YES ||
	    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept) !=
		MHD_YES ||
	    (ws_header_has(http_header(req, "Sec-WebSocket-Protocol"),
			   WS_SUBPROTOCOL) &&
	     MHD_add_response_header(resp, "Sec-WebSocket-Protocol",
				     WS_SUBPROTOCOL) != MHD_YES)) {
		if (resp)
			MHD_destroy_response(resp);
		unprepare(req->ctx->vnc, r);
		return MHD_NO;
	}
	req->vnc = r;
	log_info("image %s: a VNC viewer connects (token %s)", req->name,
		 req->token->id);
	return http_queue(req, MHD_HTTP_SWITCHING_PROTOCOLS, resp, 0);
}
