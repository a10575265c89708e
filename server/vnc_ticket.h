/* SPDX-License-Identifier: MIT */
/* Tickets for the VNC WebSocket (docs/protocol.md, "Tickets").  A
 * browser cannot put an Authorization header on a WebSocket, so the web
 * page first asks, with its token, for a ticket (POST .../vnc/ticket)
 * and opens GET .../vnc?ticket=HEX with it.  A ticket is 128 random
 * bits, for one image, valid for a short time and once: taking it
 * consumes it, right or wrong image.  It stands for the token that
 * asked for it (its hash is kept, so a token revoked meanwhile is
 * refused by the caller's lookup).
 *
 * In memory only, at most VNC_TICKET_MAX at once.  Any thread may call;
 * the table has its own lock, held for no I/O.
 */
#ifndef VMFERRY_VNC_TICKET_H
#define VMFERRY_VNC_TICKET_H

#include <stdint.h>

#include "proto.h"

#define VNC_TICKET_MAX	   64
#define VNC_TICKET_BYTES   16
#define VNC_TICKET_HEX_LEN (2 * VNC_TICKET_BYTES)

struct vnc_tickets;

int vnc_tickets_new(struct vnc_tickets **ret);
void vnc_tickets_free(struct vnc_tickets *t);

/* A new ticket for image name, standing for the token whose hash is
 * given, valid until now_ms + ttl_ms (monotonic milliseconds), as hex
 * into ret_hex (VNC_TICKET_HEX_LEN + 1 bytes).  Expired tickets make
 * room first.  0, -ENOSPC (VNC_TICKET_MAX live tickets), or -EIO (no
 * randomness). */
int vnc_ticket_issue(struct vnc_tickets *t, const char *name,
		     const uint8_t token_hash[VMF_HASH_LEN], uint64_t now_ms,
		     uint64_t ttl_ms, char *ret_hex);

/* Take the ticket hex for image name: 0 with its token's hash in
 * ret_token_hash, or -EACCES (unknown, malformed, expired, used, or for
 * another image).  A known ticket is gone after this call, whatever
 * the answer.  The comparison takes the same time for every entry. */
int vnc_ticket_take(struct vnc_tickets *t, const char *name, const char *hex,
		    uint64_t now_ms, uint8_t ret_token_hash[VMF_HASH_LEN]);

#endif
