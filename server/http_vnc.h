/* SPDX-License-Identifier: MIT */
/* GET /v1/images/NAME/vnc: a WebSocket (RFC 6455) to the VNC display of
 * the image's VM on the server (docs/protocol.md, "Graphical
 * console").  The request is answered 101 and the connection handed to
 * a relay thread (ws_relay.h) between it and QEMU's VNC Unix socket
 * (vms_vnc_connect()); no port is opened for VNC.
 *
 * Owns the relays: at most HTTP_VNC_PER_IMAGE at once per image, each
 * with its thread, ended when the VM's QEMU goes (its socket closes) or
 * by http_vnc_stop().  Handlers run on libmicrohttpd's threads; the set
 * has its own lock.
 */
#ifndef VMFERRY_HTTP_VNC_H
#define VMFERRY_HTTP_VNC_H

#include "http.h"

#define HTTP_VNC_PER_IMAGE 4
#define HTTP_VNC_FRAME_MAX (256u * 1024) /* a client's frame, payload */

struct http_vnc;

#define HTTP_VNC_TICKET_S 30 /* a ticket's default lifetime */

/* A new empty set in *ret, its tickets valid ticket_s seconds (0:
 * HTTP_VNC_TICKET_S).  0 or -ENOMEM. */
int http_vnc_new(unsigned ticket_s, struct http_vnc **ret);
/* End every relay (a close frame to each viewer), join their threads,
 * and refuse new ones.  Call before libmicrohttpd stops: it waits for
 * upgraded connections to be closed.  Blocks briefly. */
void http_vnc_stop(struct http_vnc *s);
/* After http_vnc_stop().  NULL: no-op. */
void http_vnc_free(struct http_vnc *s);

/* The route's handler, once authenticated and authorised (run grant):
 * 400 not a WebSocket upgrade, 426 another WebSocket version, 404 the
 * image has not run here, 409 its VM is not running, 503 its display
 * is not ready yet or too many viewers; else 101 and the relay. */
enum MHD_Result http_vnc_open(struct http_request *req);

/* POST .../vnc/ticket, once authenticated and authorised (run grant):
 * 200 {"ticket": HEX, "expires_in": SECONDS} for GET .../vnc?ticket=HEX
 * (vnc_ticket.h) while the VM runs; 404 the image has not run here, 409
 * its VM is not running, 503 too many tickets. */
enum MHD_Result http_vnc_ticket(struct http_request *req);

/* Take a ticket for image name (vnc_ticket_take()): 0 with the hash of
 * the token it stands for in ret_token_hash, or -EACCES. */
int http_vnc_ticket_take(struct http_vnc *s, const char *name, const char *hex,
			 uint8_t ret_token_hash[VMF_HASH_LEN]);

/* The request ends (http.c's completion callback): drop a relay that
 * was prepared but never upgraded. */
void http_vnc_request_done(struct http_request *req);

#endif
