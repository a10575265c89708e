/* SPDX-License-Identifier: MIT */
/* One transfer of the fetch engine (fetch.c): a request on an easy handle.
 *
 * Owns each slot's easy handle, the request's URL and header list, and
 * the settings every transfer shares (struct xfer_config, including the
 * bearer token, which goes only into the Authorization header and is
 * wiped when freed).  Called only by fetch.c, on the fetch thread; no
 * lock is taken here.
 *
 * Reply hygiene (the rules are in fetch.h): every request gets the
 * allowed protocols, no redirects, no Accept-Encoding, the stall timeout
 * and TLS verification.  The status and headers are checked at the
 * first body byte, so a wrong status or Content-Range is refused before
 * any byte reaches buf; the body of a non-2xx reply goes to a side
 * buffer, read only for its JSON "error" field; the body length is
 * checked when the transfer ends.  CURLcodes and HTTP statuses become
 * -errno here and nowhere else, with one line of detail in req->errmsg.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <zstd.h>

#include "log.h"
#include "proto.h"
#include "util.h"

#include "fetch_xfer.h"

/* CURLOPT_PROTOCOLS_STR appeared in 7.85. */
#if LIBCURL_VERSION_NUM < 0x075500
#error "libcurl 7.85 or later is required"
#endif

#define FETCH_HEADER_VAL_MAX 200 /* content_type, extra_headers */

/* Copy s as printable ASCII (anything else becomes '?'). */
static void copy_printable(char *out, size_t out_len, const char *s, size_t len)
{
	size_t i;

	if (out_len == 0)
		return;
	for (i = 0; i < len && i + 1 < out_len; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
}

/* A header value from the caller must not smuggle in another line. */
static bool header_value_ok(const char *s)
{
	return !s || (strlen(s) <= FETCH_HEADER_VAL_MAX && !strpbrk(s, "\r\n"));
}

/* Bearer tokens are visible ASCII (RFC 6750 b64token and then some). */
static bool token_ok(const char *s)
{
	if (strlen(s) > VMF_TOKEN_MAX)
		return false;
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return false;
	return true;
}

static int fetch_strdup(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

int xfer_config_init(struct xfer_config *xc, const struct fetch_config *cfg)
{
	int r;

	xc->connect_timeout_s = cfg->connect_timeout_s ?: 10;
	xc->stall_timeout_s = cfg->stall_timeout_s ?: 30;
	if (!cfg->base_url || xc->connect_timeout_s < 0 ||
	    xc->stall_timeout_s < 0)
		return -EINVAL;
	if (cfg->token && *cfg->token) {
		size_t len;

		if (!token_ok(cfg->token))
			return -EINVAL;
		len = strlen("Authorization: Bearer ") + strlen(cfg->token) + 1;
		xc->auth_header = malloc(len);
		if (!xc->auth_header)
			return -ENOMEM;
		snprintf(xc->auth_header, len, "Authorization: Bearer %s",
			 cfg->token);
	}
	r = fetch_strdup(cfg->base_url, &xc->base_url);
	if (r == 0)
		r = fetch_strdup(cfg->cacert, &xc->cacert);
	if (r == 0)
		r = fetch_strdup(cfg->pin_sha256, &xc->pin);
	if (r < 0)
		return r;
	xc->insecure = cfg->insecure;
	xc->protocols = cfg->allow_plain ? "https,http,ftp" : "https";
	return 0;
}

void xfer_config_fini(struct xfer_config *xc)
{
	free(xc->base_url);
	if (xc->auth_header) {
		explicit_bzero(xc->auth_header, strlen(xc->auth_header));
		free(xc->auth_header);
	}
	free(xc->cacert);
	free(xc->pin);
}

void xfer_init(struct xfer *x, const struct xfer_config *xc)
{
	x->xc = xc;
}

void xfer_fini(struct xfer *x)
{
	if (x->easy)
		curl_easy_cleanup(x->easy);
	x->easy = NULL;
	ZSTD_freeDCtx(x->zctx);
	x->zctx = NULL;
}

int fetch_errmsg(struct fetch_req *req, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(req->errmsg, sizeof(req->errmsg), fmt, ap);
	va_end(ap);
	return r;
}

/* Map a CURLcode onto -errno (the only place CURLcodes are seen). */
static int fetch_map_curl(struct xfer *x, CURLcode cc)
{
	long verify = 0;

	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return -EPERM;
	case CURLE_SSL_CONNECT_ERROR:
		/* A handshake that failed because the peer did not verify. */
		if (curl_easy_getinfo(x->easy, CURLINFO_SSL_VERIFYRESULT,
				      &verify) == CURLE_OK &&
		    verify != 0)
			return -EPERM;
		return -EIO;
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EPROTONOSUPPORT;
	case CURLE_URL_MALFORMAT:
		return -EINVAL;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	/* FTP's equivalents of 403, 404 and 416. */
	case CURLE_LOGIN_DENIED:
	case CURLE_REMOTE_ACCESS_DENIED:
		return -EACCES;
	case CURLE_REMOTE_FILE_NOT_FOUND:
		return -ENOENT;
	case CURLE_BAD_DOWNLOAD_RESUME:
		return -ERANGE;
	case CURLE_RANGE_ERROR:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

/* Parse unsigned decimal digits at *p (at least one, no sign, no
 * spaces), advancing *p. */
static int parse_digits(const char **p, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -EBADMSG;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EBADMSG;
		v = v * 10 + d;
	}
	*p = s;
	*ret = v;
	return 0;
}

/* True if s is exactly "bytes OFF-LAST/TOTAL" (TOTAL digits or '*') for
 * the range asked, and consistent with its total (*ret_total; 0 for
 * '*'). */
static bool content_range_matches(const char *s, uint64_t off, uint64_t len,
				  uint64_t *ret_total)
{
	uint64_t first, last, total = 0;

	if (strncmp(s, "bytes ", 6) != 0)
		return false;
	s += 6;
	if (parse_digits(&s, &first) < 0 || *s++ != '-' ||
	    parse_digits(&s, &last) < 0 || *s++ != '/')
		return false;
	if (strcmp(s, "*") != 0) {
		if (parse_digits(&s, &total) < 0 || *s != '\0' || last >= total)
			return false;
	}
	*ret_total = total;
	return first == off && last == off + len - 1;
}

/* Check a 2xx answer against what was asked; once the transfer is over
 * (final), also the body length.  Returns 0 or -EBADMSG with errmsg. */
static int xfer_check_success(struct xfer *x, long status, bool final)
{
	struct fetch_req *req = x->req;
	const char *m = req->method;
	bool upload = m && (!strcmp(m, "PUT") || !strcmp(m, "POST"));
	char shown[sizeof(x->crange)];

	if (req->len > 0) {
		if (status != 206)
			return fetch_errmsg(req, -EBADMSG,
					    "range reply: HTTP %ld, not 206",
					    status);
		if (x->n_crange != 1 || x->crange_long)
			return fetch_errmsg(req, -EBADMSG,
					    "range reply: %u Content-Range "
					    "headers",
					    x->n_crange);
		if (!content_range_matches(x->crange, req->off, req->len,
					   &x->total)) {
			copy_printable(shown, sizeof(shown), x->crange,
				       strlen(x->crange));
			return fetch_errmsg(req, -EBADMSG,
					    "range reply: Content-Range \"%s\" "
					    "for bytes %" PRIu64 "-%" PRIu64,
					    shown, req->off,
					    req->off + req->len - 1);
		}
	} else if (status != 200 &&
		   !(upload && (status == 201 || status == 204))) {
		return fetch_errmsg(req, -EBADMSG, "unexpected HTTP %ld",
				    status);
	}
	if (x->encoded)
		return fetch_errmsg(req, -EBADMSG,
				    "reply has a Content-Encoding");
	if (x->zstd && (!x->zstd_ask || req->len == 0))
		return fetch_errmsg(req, -EBADMSG, "reply compressed unasked");
	if (final && x->zstd && !x->zdone)
		return fetch_errmsg(req, -EBADMSG,
				    "compressed reply: the frame is cut "
				    "short");
	if (final && req->len > 0 && req->got != req->len)
		return fetch_errmsg(req, -EBADMSG,
				    "range reply: %zu bytes, not %" PRIu64,
				    req->got, req->len);
	return 0;
}

/* The body of an error answer that is not vmferry's JSON (a plain
 * server's text or HTML page), as one printable line: runs of white
 * space become one space, and it is cut at out_len. */
static void trim_body(char *out, size_t out_len, const char *s, size_t len)
{
	size_t n = 0;
	bool space = false;

	for (size_t i = 0; i < len && n + 1 < out_len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < out_len)
			out[n++] = ' ';
		space = false;
		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[n] = '\0';
}

/* A 3xx answer the caller asked to see: -EREMCHG with its target. */
static int xfer_redirect(struct xfer *x, long status)
{
	struct fetch_req *req = x->req;
	char *target = NULL;
	size_t len;

	if (curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &target) !=
		CURLE_OK ||
	    !target)
		return fetch_errmsg(req, -EIO, "HTTP %ld without a Location",
				    status);
	len = strlen(target);
	if (len >= req->redirect_len)
		return fetch_errmsg(req, -EIO,
				    "HTTP %ld to a URL of %zu bytes: too long",
				    status, len);
	memcpy(req->redirect, target, len + 1);
	return fetch_errmsg(req, -EREMCHG, "HTTP %ld to %.*s", status,
			    no_query_len(target), target);
}

/* A non-2xx answer: "HTTP N: <the JSON body's error field>", or the
 * body's text when it is not vmferry's JSON. */
static int xfer_status_error(struct xfer *x, long status)
{
	struct fetch_req *req = x->req;
	json_error_t jerr;
	json_t *root = json_loadb(x->side, x->side_len, 0, &jerr);
	const char *e = json_string_value(json_object_get(root, "error"));
	char shown[160];
	int r;

	if (status >= 300 && status <= 399 && req->redirect) {
		json_decref(root);
		return xfer_redirect(x, status);
	}
	switch (status) {
	case 401:
	case 403:
		r = -EACCES;
		break;
	case 404:
		r = -ENOENT;
		break;
	case 416:
		r = -ERANGE;
		break;
	default:
		r = -EIO;
		break;
	}
	if (e)
		copy_printable(shown, sizeof(shown), e, strlen(e));
	else
		trim_body(shown, sizeof(shown), x->side, x->side_len);
	if (shown[0])
		fetch_errmsg(req, r, "HTTP %ld: %s", status, shown);
	else
		fetch_errmsg(req, r, "HTTP %ld", status);
	json_decref(root);
	return r;
}

/* The result of a finished transfer. */
int xfer_result(struct xfer *x, CURLcode cc)
{
	struct fetch_req *req = x->req;
	long status = 0;
	int r;
	curl_off_t clen = -1;

	if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status) !=
	    CURLE_OK)
		status = 0;
	req->http_status = x->is_ftp ? 0 : status;
	if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
			      &clen) != CURLE_OK)
		clen = -1;
	req->content_length = clen;
	req->range_total = x->total;
	if (x->err < 0)
		return x->err; /* errmsg already says why */
	if (cc != CURLE_OK) {
		r = fetch_map_curl(x, cc);
		return fetch_errmsg(req, r, "%s",
				    x->errbuf[0] ? x->errbuf
						 : curl_easy_strerror(cc));
	}
	if (x->is_ftp) {
		/* No status line or headers: the length is all to check. */
		if (req->len > 0 && req->got != req->len)
			return fetch_errmsg(req, -EBADMSG,
					    "range reply: %zu bytes, not "
					    "%" PRIu64,
					    req->got, req->len);
		return 0;
	}
	if (status < 200 || status > 299) {
		if (status == 0)
			return fetch_errmsg(req, -EIO, "no HTTP status");
		return xfer_status_error(x, status);
	}
	return xfer_check_success(x, status, true);
}

static size_t xfer_header_cb(char *buf, size_t size, size_t nitems,
			     void *opaque)
{
	struct xfer *x = opaque;
	size_t n = size * nitems, name_len;
	const char *v, *end;

	/* A new status line (after a 1xx) starts a new header set. */
	if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		x->n_crange = 0;
		x->crange_long = false;
		x->encoded = false;
		x->zstd = false;
		x->crange[0] = '\0';
		return n;
	}
	v = memchr(buf, ':', n);
	if (!v)
		return n;
	name_len = (size_t)(v - buf);
	end = buf + n;
	for (v++; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
			   end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (name_len == 13 && strncasecmp(buf, "Content-Range", 13) == 0) {
		x->n_crange++;
		if ((size_t)(end - v) >= sizeof(x->crange)) {
			x->crange_long = true;
		} else {
			memcpy(x->crange, v, (size_t)(end - v));
			x->crange[end - v] = '\0';
		}
	} else if (name_len == 16 &&
		   strncasecmp(buf, "Content-Encoding", 16) == 0) {
		if (end - v != 8 || strncasecmp(v, "identity", 8) != 0)
			x->encoded = true;
	} else if (name_len == 16 &&
		   strncasecmp(buf, "Vmferry-Encoding", 16) == 0) {
		/* Only zstd exists; anything else is an encoding we
		 * cannot read: refuse the reply. */
		if (end - v == 4 && strncasecmp(v, "zstd", 4) == 0)
			x->zstd = true;
		else
			x->encoded = true;
	}
	return n;
}

/* At the first body byte the headers are complete: decide where the
 * body goes, and refuse a bad answer before any of it reaches buf. */
static int xfer_first_byte(struct xfer *x)
{
	long status = 0;

	x->checked = true;
	if (x->is_ftp)
		return 0;
	if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status) !=
	    CURLE_OK)
		status = 0;
	if (status < 200 || status > 299) {
		x->error_body = true;
		return 0;
	}
	return xfer_check_success(x, status, false);
}

/* A compressed range reply's body bytes: decoded straight into the
 * caller's buffer, which must end up holding exactly req->len bytes and
 * one whole frame.  Returns n, or 0 (x->err set) to abort. */
static size_t xfer_write_zstd(struct xfer *x, const char *ptr, size_t n)
{
	struct fetch_req *req = x->req;
	ZSTD_inBuffer in = {ptr, n, 0};
	ZSTD_outBuffer out = {req->buf, req->len, req->got};
	size_t zr;

	if (x->zdone) {
		x->err = fetch_errmsg(req, -EBADMSG,
				      "compressed reply: bytes after the "
				      "frame");
		return 0;
	}
	if (!x->zctx) {
		x->zctx = ZSTD_createDCtx();
		if (!x->zctx) {
			x->err = fetch_errmsg(req, -ENOMEM, "out of memory");
			return 0;
		}
	}
	while (in.pos < in.size) {
		size_t in_was = in.pos, out_was = out.pos;

		zr = ZSTD_decompressStream(x->zctx, &out, &in);
		if (ZSTD_isError(zr)) {
			x->err =
			    fetch_errmsg(req, -EBADMSG, "compressed reply: %s",
					 ZSTD_getErrorName(zr));
			return 0;
		}
		req->got = out.pos;
		if (zr == 0) {
			x->zdone = true;
			if (in.pos < in.size) {
				x->err = fetch_errmsg(
				    req, -EBADMSG,
				    "compressed reply: bytes after the frame");
				return 0;
			}
			break;
		}
		if (in.pos == in_was && out.pos == out_was) {
			/* No progress: the buffer is full and the frame
			 * holds more. */
			x->err = fetch_errmsg(req, -EBADMSG,
					      "compressed reply: more than "
					      "%" PRIu64 " bytes",
					      req->len);
			return 0;
		}
	}
	return n;
}

static size_t xfer_write_cb(char *ptr, size_t size, size_t nmemb, void *opaque)
{
	struct xfer *x = opaque;
	struct fetch_req *req = x->req;
	size_t n = size * nmemb, room;
	uint64_t limit;
	int r;

	if (!x->checked) {
		r = xfer_first_byte(x);
		if (r < 0) {
			x->err = r;
			return 0;
		}
	}
	if (x->error_body) {
		room = sizeof(x->side) - x->side_len;
		if (n < room)
			room = n;
		memcpy(x->side + x->side_len, ptr, room);
		x->side_len += room;
		return n;
	}
	if (req->sink) {
		r = req->sink(req, ptr, n);
		if (r < 0) {
			x->err = r;
			return 0;
		}
		req->got += n;
		return n;
	}
	if (!req->buf && req->len == 0) {
		/* The caller does not want the body; read a bounded one. */
		if (n > VMF_JSON_MAX - x->dropped) {
			x->err = fetch_errmsg(req, -EFBIG,
					      "reply larger than %u bytes",
					      VMF_JSON_MAX);
			return 0;
		}
		x->dropped += n;
		return n;
	}
	x->wire += n;
	if (x->zstd)
		return xfer_write_zstd(x, ptr, n);
	limit = req->len > 0 ? req->len : req->buf_len;
	if (n > limit - req->got) {
		if (req->len > 0)
			x->err = fetch_errmsg(req, -EBADMSG,
					      "range reply: more than "
					      "%" PRIu64 " bytes",
					      req->len);
		else
			x->err = fetch_errmsg(req, -EFBIG,
					      "reply larger than %zu bytes",
					      req->buf_len);
		return 0;
	}
	memcpy((char *)req->buf + req->got, ptr, n);
	req->got += n;
	return n;
}

static int slist_add(struct curl_slist **l, const char *s)
{
	struct curl_slist *n = curl_slist_append(*l, s);

	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

/* Request headers: token, body type, the caller's extra line. */
static int xfer_headers(struct xfer *x, bool upload)
{
	const struct xfer_config *xc = x->xc;
	struct fetch_req *req = x->req;
	char line[FETCH_HEADER_VAL_MAX + 32];
	int r = 0;

	if (xc->auth_header && !x->is_ftp)
		r = slist_add(&x->headers, xc->auth_header);
	if (r == 0 && x->zstd_ask && req->len > 0 && !x->is_ftp)
		r = slist_add(&x->headers, "Vmferry-Accept-Encoding: zstd");
	if (r == 0 && upload) {
		snprintf(line, sizeof(line), "Content-Type: %s",
			 req->content_type ? req->content_type
					   : "application/octet-stream");
		r = slist_add(&x->headers, line);
		/* No "Expect: 100-continue" round trip before a body. */
		if (r == 0)
			r = slist_add(&x->headers, "Expect:");
	}
	for (unsigned i = 0; r == 0 && i < FETCH_MAX_EXTRA_HEADERS; i++)
		if (req->extra_headers[i])
			r = slist_add(&x->headers, req->extra_headers[i]);
	return r;
}

/* curl_easy_setopt() unless an earlier one failed. */
#define setopt_chain(cc, easy, opt, val)                               \
	do {                                                           \
		if ((cc) == CURLE_OK)                                  \
			(cc) = curl_easy_setopt((easy), (opt), (val)); \
	} while (0)

static CURLcode xfer_setopts(struct xfer *x, bool head, bool upload)
{
	const struct xfer_config *xc = x->xc;
	struct fetch_req *req = x->req;
	CURL *e = x->easy;
	CURLcode cc = CURLE_OK;

	setopt_chain(cc, e, CURLOPT_URL, x->url);
	setopt_chain(cc, e, CURLOPT_PRIVATE, (void *)x);
	setopt_chain(cc, e, CURLOPT_NOSIGNAL, 1L);
	setopt_chain(cc, e, CURLOPT_PROTOCOLS_STR, xc->protocols);
	setopt_chain(cc, e, CURLOPT_REDIR_PROTOCOLS_STR, xc->protocols);
	setopt_chain(cc, e, CURLOPT_FOLLOWLOCATION, 0L);
	setopt_chain(cc, e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* Over TLS, wait for a connection that may multiplex (ALPN tells
	 * after the handshake) rather than open more.  Not over http://:
	 * curl would learn it cannot multiplex only from the first reply,
	 * so one slow request would hold up the others. */
	if (x->is_https)
		setopt_chain(cc, e, CURLOPT_PIPEWAIT, 1L);
	setopt_chain(cc, e, CURLOPT_CONNECTTIMEOUT, xc->connect_timeout_s);
	setopt_chain(cc, e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	setopt_chain(cc, e, CURLOPT_LOW_SPEED_TIME, xc->stall_timeout_s);
	if (req->deadline_ns) {
		uint64_t now = now_ns();
		long left_ms = req->deadline_ns > now
				   ? (long)((req->deadline_ns - now) / 1000000)
				   : 0;

		setopt_chain(cc, e, CURLOPT_TIMEOUT_MS,
			     left_ms > 0 ? left_ms : 1L);
	}
	setopt_chain(cc, e, CURLOPT_ERRORBUFFER, x->errbuf);
	setopt_chain(cc, e, CURLOPT_WRITEFUNCTION, xfer_write_cb);
	setopt_chain(cc, e, CURLOPT_WRITEDATA, (void *)x);
	setopt_chain(cc, e, CURLOPT_HEADERFUNCTION, xfer_header_cb);
	setopt_chain(cc, e, CURLOPT_HEADERDATA, (void *)x);
	setopt_chain(cc, e, CURLOPT_USERAGENT, "vmferry");
	if (x->headers)
		setopt_chain(cc, e, CURLOPT_HTTPHEADER, x->headers);
	if (xc->cacert)
		setopt_chain(cc, e, CURLOPT_CAINFO, xc->cacert);
	if (xc->pin)
		setopt_chain(cc, e, CURLOPT_PINNEDPUBLICKEY, xc->pin);
	if (xc->insecure) {
		setopt_chain(cc, e, CURLOPT_SSL_VERIFYPEER, 0L);
		setopt_chain(cc, e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (req->len > 0)
		setopt_chain(cc, e, CURLOPT_RANGE, x->range);
	if (head)
		setopt_chain(cc, e, CURLOPT_NOBODY, 1L);
	if (upload) {
		/* Never NULL: curl would read the body from stdin. */
		setopt_chain(cc, e, CURLOPT_POSTFIELDS,
			     req->body ? req->body : "");
		setopt_chain(cc, e, CURLOPT_POSTFIELDSIZE_LARGE,
			     (curl_off_t)req->body_len);
		if (!strcmp(req->method, "PUT"))
			setopt_chain(cc, e, CURLOPT_CUSTOMREQUEST, "PUT");
	}
	if (req->method && !strcmp(req->method, "DELETE"))
		setopt_chain(cc, e, CURLOPT_CUSTOMREQUEST, "DELETE");
	return cc;
}

/* Set up x for req and add it to the multi handle.  Returns 0, or
 * -errno with req->errmsg set. */
int xfer_start(struct xfer *x, struct fetch_req *req, CURLM *multi)
{
	const struct xfer_config *xc = x->xc;
	const char *method = req->method ? req->method : "GET";
	bool head = false, upload = false;
	size_t url_len;
	CURLMcode mc;
	CURLcode cc;
	int r;

	x->req = req;
	x->err = 0;
	x->checked = x->error_body = false;
	x->n_crange = 0;
	x->crange_long = x->encoded = false;
	x->zstd = x->zdone = false;
	x->wire = 0;
	if (x->zctx) /* a new frame; a cut one may have left state */
		(void)ZSTD_DCtx_reset(x->zctx, ZSTD_reset_session_only);
	x->crange[0] = '\0';
	x->side_len = 0;
	x->dropped = 0;
	x->total = 0;
	x->errbuf[0] = '\0';

	if (!strcmp(method, "HEAD"))
		head = true;
	else if (!strcmp(method, "PUT") || !strcmp(method, "POST"))
		upload = true;
	else if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0)
		return fetch_errmsg(req, -EINVAL, "unsupported method");
	if (req->len > 0 && strcmp(method, "GET") != 0)
		return fetch_errmsg(req, -EINVAL, "a range needs GET");
	if (req->sink && (req->len > 0 || strcmp(method, "GET") != 0))
		return fetch_errmsg(req, -EINVAL, "a stream needs a whole GET");
	if (req->len > 0 && req->off > UINT64_MAX - (req->len - 1))
		return fetch_errmsg(req, -EINVAL, "range overflows");
	if (!header_value_ok(req->content_type))
		return fetch_errmsg(req, -EINVAL, "bad content type");
	for (unsigned i = 0; i < FETCH_MAX_EXTRA_HEADERS; i++)
		if (!header_value_ok(req->extra_headers[i]))
			return fetch_errmsg(req, -EINVAL, "bad extra header");

	url_len = strlen(xc->base_url) + strlen(req->path) + 1;
	x->url = malloc(url_len);
	if (!x->url)
		return fetch_errmsg(req, -ENOMEM, "out of memory");
	snprintf(x->url, url_len, "%s%s", xc->base_url, req->path);
	x->is_ftp = strncasecmp(x->url, "ftp://", 6) == 0;
	x->is_https = strncasecmp(x->url, "https://", 8) == 0;
	if ((upload || !strcmp(method, "DELETE")) && x->is_ftp)
		return fetch_errmsg(req, -EINVAL, "ftp is read-only");
	if (req->len > 0)
		snprintf(x->range, sizeof(x->range), "%" PRIu64 "-%" PRIu64,
			 req->off, req->off + req->len - 1);

	if (x->easy) {
		curl_easy_reset(x->easy);
	} else {
		x->easy = curl_easy_init();
		if (!x->easy)
			return fetch_errmsg(req, -ENOMEM, "curl_easy_init");
	}
	r = xfer_headers(x, upload);
	if (r < 0)
		return fetch_errmsg(req, r, "out of memory");
	cc = xfer_setopts(x, head, upload);
	if (cc != CURLE_OK)
		return fetch_errmsg(req, fetch_map_curl(x, cc),
				    "setting up transfer: %s",
				    curl_easy_strerror(cc));
	mc = curl_multi_add_handle(multi, x->easy);
	if (mc != CURLM_OK)
		return fetch_errmsg(
		    req, mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO,
		    "adding transfer: %s", curl_multi_strerror(mc));
	log_debug(LOG_CAT_FETCH, "fetch %s %.*s%s%s%s", method,
		  no_query_len(req->path), req->path, req->len ? " [" : "",
		  req->len ? x->range : "", req->len ? "]" : "");
	return 0;
}

struct xfer *xfer_of(CURL *easy)
{
	char *priv = NULL;

	if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
	    !priv)
		abort(); /* every handle we add carries its xfer */
	return (struct xfer *)priv;
}

void xfer_cancel(struct xfer *x, CURLM *multi)
{
	(void)curl_multi_remove_handle(multi, x->easy);
	fetch_errmsg(x->req, -ECANCELED, "fetch engine stopping");
}

struct fetch_req *xfer_release(struct xfer *x)
{
	struct fetch_req *req = x->req;

	free(x->url);
	x->url = NULL;
	/* curl_slist_append() copied the Authorization line: clear it. */
	for (struct curl_slist *l = x->headers; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	x->req = NULL;
	return req;
}
