/* SPDX-License-Identifier: MIT */
/* Lease and pin routes: POST and DELETE /v1/images/NAME/lease and
 * /v1/images/NAME/pins, and the lease fields of other answers (image
 * metadata, a commit's 409).
 *
 * Called by http.c (and http_write.c, http_read.c) on the request's
 * libmicrohttpd thread, after authentication, routing and the grant
 * check.  The handlers queue exactly one response.
 */
#ifndef VMFERRY_HTTP_LEASE_H
#define VMFERRY_HTTP_LEASE_H

#include <jansson.h>

#include "http.h"
#include "leases.h"

/* Largest body of POST .../lease. */
#define HTTP_LEASE_BODY_MAX 4096

/* POST: the JSON body is in req->body (http_write.c buffered it). */
enum MHD_Result http_lease_acquire(struct http_request *req);
/* DELETE, with the Vmferry-Lease-Id header. */
enum MHD_Result http_lease_release(struct http_request *req);

/* POST .../pins (body in req->body, as for a lease) and DELETE with the
 * Vmferry-Pin-Id header. */
enum MHD_Result http_pin_acquire(struct http_request *req);
enum MHD_Result http_pin_release(struct http_request *req);

/* "image NAME is leased to HOLDER (WHERE) since TIME until TIME" into
 * buf. */
void http_lease_describe(const char *name, const struct lease *l, char *buf,
			 size_t len);
/* The image's live lease as {holder, where, since, expires}, or JSON
 * null: a new reference, NULL only when out of memory.  An unreadable
 * lease file counts as none (it is logged). */
json_t *http_lease_public(struct http_request *req);
/* The same for image name (the image list). */
json_t *http_lease_public_of(struct http_request *req, const char *name);

#endif
