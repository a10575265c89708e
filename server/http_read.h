/* SPDX-License-Identifier: MIT */
/* Read routes: image list, metadata, history, a version's manifest and
 * data, counters.
 *
 * Called by http.c on a libmicrohttpd thread once the request passed
 * authentication, routing and the grant check; each queues exactly one
 * response and returns what MHD_queue_response() returned.
 */
#ifndef VMFERRY_HTTP_READ_H
#define VMFERRY_HTTP_READ_H

#include "http.h"

/* GET /v1/images */
enum MHD_Result http_read_images(struct http_request *req);
/* GET /v1/images/NAME */
enum MHD_Result http_read_image(struct http_request *req);
/* GET /v1/images/NAME/versions: the history (history.h). */
enum MHD_Result http_read_history(struct http_request *req);
/* GET /v1/images/NAME/versions/N: version N's sizes and
 * manifest_sha256 (no-cache). */
enum MHD_Result http_read_version_meta(struct http_request *req);
/* GET /v1/images/NAME/versions/N/{manifest,data}, with Range. */
enum MHD_Result http_read_version(struct http_request *req);
/* GET /v1/images/NAME/access: 204 (no body, no-store); the token and
 * its read grant on NAME were checked before, and whether NAME exists
 * is not looked at.  For a caching proxy's auth_request
 * (docs/scale-out.md). */
enum MHD_Result http_read_access(struct http_request *req);
/* GET /v1/stats */
enum MHD_Result http_read_stats(struct http_request *req);

#endif
