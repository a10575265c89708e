/* SPDX-License-Identifier: MIT */
/* The boot-profile route, /v1/images/NAME/versions/N/profile
 * (docs/protocol.md, "Boot profiles"): PUT merges a client's first-read
 * order into version N's profile; GET answers the merged profile of N,
 * or of the nearest older version that has one.
 *
 * Read on NAME is enough for both.  State is in profile.c; nothing here
 * is shared between requests.
 */
#ifndef VMFERRY_HTTP_PROFILE_H
#define VMFERRY_HTTP_PROFILE_H

#include "http.h"

/* GET and HEAD: 200 with the profile, 404 (no image, no version N, or
 * no profile at or below N). */
enum MHD_Result http_profile_get(struct http_request *req);

/* PUT, once the body (req->body, at most VMF_PROFILE_BODY_MAX bytes) is
 * in: 200 {"version", "blocks", "uploads"}; 404 (no image or version);
 * 400 (the body is not a valid profile of version N). */
enum MHD_Result http_profile_put(struct http_request *req);

#endif
