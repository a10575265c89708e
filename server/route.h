/* SPDX-License-Identifier: MIT */
/* Request routing: method and URL to a route and its checked
 * parameters, or the HTTP status to refuse it with.  docs/protocol.md
 * lists the routes.
 *
 * Pure: no libmicrohttpd, no I/O, no allocation, so that it can be
 * fuzzed alone (tests/fuzz/fuzz-router.c).  Stateless; any thread.
 */
#ifndef VMFERRY_ROUTE_H
#define VMFERRY_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

enum route_id {
	ROUTE_IMAGES,	  /* GET /v1/images */
	ROUTE_IMAGE,	  /* GET /v1/images/NAME */
	ROUTE_COMMIT,	  /* POST /v1/images/NAME/versions */
	ROUTE_HISTORY,	  /* GET /v1/images/NAME/versions */
	ROUTE_LEASE,	  /* POST, DELETE /v1/images/NAME/lease */
	ROUTE_PINS,	  /* POST, DELETE /v1/images/NAME/pins */
	ROUTE_MANIFEST,	  /* GET /v1/images/NAME/versions/N/manifest */
	ROUTE_DATA,	  /* GET /v1/images/NAME/versions/N/data */
	ROUTE_PROFILE,	  /* GET, PUT /v1/images/NAME/versions/N/profile */
	ROUTE_MISSING,	  /* POST /v1/blocks/missing */
	ROUTE_BLOCK,	  /* PUT /v1/blocks/HEX */
	ROUTE_STATS,	  /* GET /v1/stats */
	ROUTE_VM,	  /* GET, POST, DELETE /v1/images/NAME/vm */
	ROUTE_CONSOLE,	  /* GET, POST /v1/images/NAME/console */
	ROUTE_ACCESS,	  /* GET /v1/images/NAME/access */
	ROUTE_VNC,	  /* GET /v1/images/NAME/vnc (a WebSocket) */
	ROUTE_VNC_TICKET, /* POST /v1/images/NAME/vnc/ticket */
	ROUTE_VERSION,	  /* GET /v1/images/NAME/versions/N */
};

/* What route_parse() found. */
struct route_match {
	enum route_id route;
	/* NAME, percent-decoded and valid by image_name_valid(); "" for
	 * the routes without one. */
	char name[VMF_NAME_MAX + 1];
	uint64_t version; /* N (ROUTE_VERSION, ..._MANIFEST, _DATA, _PROFILE) */
	uint8_t hash[VMF_HASH_LEN]; /* HEX (ROUTE_BLOCK), else zero */
	/* Why the request is refused (a static string), NULL if it is not. */
	const char *error;
};

/* Route a request: method as sent, url its path as sent (not yet
 * percent-decoded, no query string).  The checks run in this order and
 * the first that fails decides:
 *   404  no such route (ret->error says so);
 *   405  the route exists but not for method: ret->route is set, for the
 *        Allow header (route_methods()); the message is the caller's;
 *   400  a parameter is bad: NAME does not decode to a valid image name,
 *        N is not plain decimal (no sign, no leading zero, at most
 *        UINT64_MAX), HEX is not 64 hex digits (ret->error says which).
 * Returns 0 with ret filled in, or that HTTP status (not an errno: the
 * status is this module's whole answer).  *ret is written either way.
 * GET and HEAD on .../versions give ROUTE_HISTORY, POST ROUTE_COMMIT. */
int route_parse(const char *method, const char *url, struct route_match *ret);

/* The methods route r answers, as an Allow header value ("GET, HEAD"). */
const char *route_methods(enum route_id r);

/* Is method (exactly, case-sensitively) one of route_methods(r)? */
bool route_method_allowed(enum route_id r, const char *method);

#endif
