/* SPDX-License-Identifier: MIT */
/* The web page (server/ui/, compiled in): GET /ui/ and its script and
 * style sheet, and / redirecting there.  Static files with no data in
 * them, served without a token; the page's script calls the API with
 * the token the user gives it.  Also noVNC's files, for the page's
 * display view, read-only from HTTP_UI_NOVNC_DIR under /ui/novnc/ when
 * that directory exists (404 otherwise).  Called by http.c on the
 * request's thread. */
#ifndef VMFERRY_HTTP_UI_H
#define VMFERRY_HTTP_UI_H

#include <stdbool.h>

#include "http.h"

/* Debian's novnc package (1.3: core/rfb.js and its imports are ES
 * modules). */
#define HTTP_UI_NOVNC_DIR    "/usr/share/novnc"
#define HTTP_UI_NOVNC_PREFIX "/ui/novnc/"

/* Is url ("/", "/ui", "/ui/...") the page's, rather than the API's? */
bool http_ui_path(const char *url);

/* Answer it: the file (GET, HEAD), a redirect, 404 or 405. */
enum MHD_Result http_ui_serve(struct http_request *req, const char *url);

#endif
