/* SPDX-License-Identifier: MIT */
/* Write routes: POST /v1/blocks/missing, PUT /v1/blocks/HEX and
 * POST /v1/images/NAME/versions.
 *
 * Called by http.c on the request's libmicrohttpd thread, after
 * authentication, routing and the grant check: http_write_begin() once
 * with the headers, http_write_data() for each piece of the body,
 * http_write_finish() at its end, http_write_fini() on completion
 * (always, even for requests that never got here).  An error found
 * while the body arrives is answered at its end: libmicrohttpd accepts
 * a response only before the body or after it.
 */
#ifndef VMFERRY_HTTP_WRITE_H
#define VMFERRY_HTTP_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* Check the headers; may queue an error (400, 413) at once. */
enum MHD_Result http_write_begin(struct http_request *req);
/* Take a piece of the body (buffered, or streamed to DIR/tmp). */
void http_write_data(struct http_request *req, const uint8_t *buf, size_t len);
/* The body is complete: act and queue the answer. */
enum MHD_Result http_write_finish(struct http_request *req);
/* Release what the request holds (buffers, an unconsumed upload). */
void http_write_fini(struct http_request *req);

#endif
