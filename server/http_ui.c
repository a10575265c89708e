/* SPDX-License-Identifier: MIT */
/* The web page's files (see http_ui.h).  ui_assets.h is generated from
 * server/ui/ by the Makefile (xxd -i): one byte array per file.  The
 * answers forbid everything the page does not need (Content Security
 * Policy: scripts and styles from this server only, requests to it
 * only, no framing). */
#include <string.h>

#include "http_ui.h"
#include "ui_assets.h"

#define UI_CSP                                                      \
	"default-src 'none'; script-src 'self'; style-src 'self'; " \
	"connect-src 'self'; img-src 'self'; form-action 'self'; "  \
	"base-uri 'none'; frame-ancestors 'none'"

struct ui_file {
	const char *path;
	const unsigned char *data;
	const unsigned int *len;
	const char *type;
};

static const struct ui_file ui_files[] = {
    {"/ui/", index_html, &index_html_len, "text/html; charset=utf-8"},
    {"/ui/app.js", app_js, &app_js_len, "text/javascript; charset=utf-8"},
    {"/ui/style.css", style_css, &style_css_len, "text/css; charset=utf-8"},
};

bool http_ui_path(const char *url)
{
	return strcmp(url, "/") == 0 || strcmp(url, "/ui") == 0 ||
	       strncmp(url, "/ui/", 4) == 0;
}

static bool add_headers(struct MHD_Response *resp, const char *type)
{
	return MHD_add_response_header(resp, "Content-Type", type) == MHD_YES &&
	       MHD_add_response_header(resp, "Cache-Control", "no-cache") ==
		   MHD_YES &&
	       MHD_add_response_header(resp, "Content-Security-Policy",
				       UI_CSP) == MHD_YES &&
	       MHD_add_response_header(resp, "X-Content-Type-Options",
				       "nosniff") == MHD_YES &&
	       MHD_add_response_header(resp, "Referrer-Policy",
				       "no-referrer") == MHD_YES;
}

enum MHD_Result http_ui_serve(struct http_request *req, const char *url)
{
	const struct ui_file *f = NULL;
	struct MHD_Response *resp;

	if (strcmp(req->method, MHD_HTTP_METHOD_GET) != 0 && !req->head)
		return http_reply_error_ex(req, 405, NULL, "Allow", "GET, HEAD",
					   "method %s not allowed here",
					   req->method);
	if (strcmp(url, "/") == 0 || strcmp(url, "/ui") == 0) {
		resp = MHD_create_response_from_buffer(0, NULL,
						       MHD_RESPMEM_PERSISTENT);
		if (resp && MHD_add_response_header(resp, "Location", "/ui/") !=
				MHD_YES) {
			MHD_destroy_response(resp);
			resp = NULL;
		}
		return http_queue(req, 302, resp, 0);
	}
	for (size_t i = 0; i < sizeof(ui_files) / sizeof(ui_files[0]); i++)
		if (strcmp(url, ui_files[i].path) == 0)
			f = &ui_files[i];
	if (!f)
		return http_reply_error(req, 404, "no such page");
	/* The arrays live as long as the program. */
	resp = MHD_create_response_from_buffer(*f->len, (void *)f->data,
					       MHD_RESPMEM_PERSISTENT);
	if (resp && !add_headers(resp, f->type)) {
		MHD_destroy_response(resp);
		resp = NULL;
	}
	return http_queue(req, 200, resp, *f->len);
}
