/* SPDX-License-Identifier: MIT */
/* The web page's files (see http_ui.h).  ui_assets.h is generated from
 * server/ui/ by the Makefile (xxd -i): one byte array per file.  The
 * answers forbid everything the page does not need (Content Security
 * Policy: scripts and styles from this server only, requests to it
 * only (its WebSocket included: 'self' covers wss: on the same host),
 * images from it or drawn by the page (noVNC's cursor is a data: URL),
 * no framing).
 *
 * noVNC's files are read from disk at each request: a path is served
 * only if it has no "." segment start, its characters are plain, and
 * its real path (symbolic links resolved) is still inside the
 * directory; a regular file, with the type its name says. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_ui.h"
#include "ui_assets.h"

#define UI_CSP                                                           \
	"default-src 'none'; script-src 'self'; style-src 'self'; "      \
	"connect-src 'self'; img-src 'self' data:; form-action 'self'; " \
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

/* Content types of noVNC's files, by the end of their name. */
static const struct {
	const char *ext;
	const char *type;
} novnc_types[] = {
    {".js", "text/javascript; charset=utf-8"},
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".json", "application/json"},
    {".woff", "font/woff"},
    {".ttf", "font/ttf"},
    {".ico", "image/x-icon"},
    {".mp3", "audio/mpeg"},
    {".oga", "audio/ogg"},
};

/* The type of a file of noVNC's named rel, or NULL: not served. */
static const char *novnc_type(const char *rel)
{
	size_t n = strlen(rel);

	for (size_t i = 0; i < sizeof(novnc_types) / sizeof(novnc_types[0]);
	     i++) {
		size_t e = strlen(novnc_types[i].ext);

		if (n > e && strcmp(rel + n - e, novnc_types[i].ext) == 0)
			return novnc_types[i].type;
	}
	return NULL;
}

/* Is rel (after HTTP_UI_NOVNC_PREFIX) a plain relative path: segments
 * of [A-Za-z0-9_.-] not starting with ".", no empty one? */
static bool novnc_rel_ok(const char *rel)
{
	bool seg_start = true;

	if (!*rel || strlen(rel) > 200)
		return false;
	for (const char *p = rel; *p; p++) {
		if (*p == '/') {
			if (seg_start)
				return false; /* "//" or a leading "/" */
			seg_start = true;
			continue;
		}
		if (seg_start && *p == '.')
			return false; /* "..", ".hidden" */
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && *p != '_' && *p != '-' &&
		    *p != '.')
			return false;
		seg_start = false;
	}
	return !seg_start;
}

/* Open noVNC's file rel: an fd with its size, or -ENOENT. */
static int novnc_open(const char *rel, uint64_t *ret_size)
{
	char path[PATH_MAX + 256], real[PATH_MAX], root[PATH_MAX];
	struct stat st;
	size_t n;
	int fd;

	if (!realpath(HTTP_UI_NOVNC_DIR, root))
		return -ENOENT;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", root, rel) >=
		PATH_MAX ||
	    !realpath(path, real))
		return -ENOENT;
	n = strlen(root);
	/* A symbolic link may point elsewhere in the directory, not out. */
	if (strncmp(real, root, n) != 0 || real[n] != '/')
		return -ENOENT;
	fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	*ret_size = (uint64_t)st.st_size;
	return fd;
}

static bool add_headers(struct MHD_Response *resp, const char *type);

static enum MHD_Result novnc_serve(struct http_request *req, const char *rel)
{
	const char *type = novnc_type(rel);
	struct MHD_Response *resp;
	uint64_t size = 0;
	int fd = -1;

	if (type && novnc_rel_ok(rel))
		fd = novnc_open(rel, &size);
	if (fd < 0)
		return http_reply_error(req, 404, "no such page");
	/* libmicrohttpd closes fd with the response. */
	resp = MHD_create_response_from_fd64(size, fd);
	if (!resp)
		close(fd);
	if (resp && !add_headers(resp, type)) {
		MHD_destroy_response(resp);
		resp = NULL;
	}
	return http_queue(req, 200, resp, size);
}

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
	if (strncmp(url, HTTP_UI_NOVNC_PREFIX, strlen(HTTP_UI_NOVNC_PREFIX)) ==
	    0)
		return novnc_serve(req, url + strlen(HTTP_UI_NOVNC_PREFIX));
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
