/* SPDX-License-Identifier: MIT */
/* Fetch engine: libcurl multi in one thread.
 *
 * Owns the CURLM, a pool of max_inflight transfers (each with an easy
 * handle that is created, reused and freed on the fetch thread only) and
 * two FIFO queues of submitted requests, demand and background.  Other
 * threads touch only the queues, the background rate and the stop flag,
 * under f->lock, and wake the thread with curl_multi_wakeup(), which
 * libcurl allows from any thread.  Completion callbacks run on the fetch
 * thread with no lock held.
 *
 * Background pacing is a token bucket in bytes kept by the fetch thread:
 * a background range request is charged its length when it starts and
 * refunded what did not arrive when it ends (a whole-body request is
 * charged what arrived); a background request starts only while the
 * bucket is not in debt.  Demand requests are never charged.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cleanup.h"
#include "log.h"
#include "mutex.h"
#include "proto.h"
#include "util.h"

#include "fetch.h"

/* CURLOPT_PROTOCOLS_STR appeared in 7.85. */
#if LIBCURL_VERSION_NUM < 0x075500
#error "libcurl 7.85 or later is required"
#endif

#define FETCH_MAX_INFLIGHT   1024 /* sanity bound on config.max_inflight */
#define FETCH_POLL_MS	     1000 /* longest sleep; curl shortens it */
#define FETCH_SIDE_MAX	     1024 /* start of an error reply kept */
#define FETCH_HEADER_VAL_MAX 200  /* content_type, extra_headers */

struct fetch_queue {
	struct fetch_req *head, *tail;
};

/* One transfer slot; used by the fetch thread only. */
struct xfer {
	struct fetch *f;
	CURL *easy;	       /* created on first use, then reset and reused */
	struct fetch_req *req; /* NULL when idle */
	struct xfer *next_idle;
	struct curl_slist *headers;
	char *url;
	bool background;
	uint64_t reserved; /* background bytes charged at start */

	/* Reply state, reset for every request. */
	int err;	   /* set by a callback that aborted the transfer */
	bool checked;	   /* status and headers checked at first body byte */
	bool error_body;   /* non-2xx: the body goes to side[], not buf */
	unsigned n_crange; /* Content-Range headers seen */
	bool crange_long;  /* one was too long to be valid */
	bool encoded;	   /* a Content-Encoding other than identity */
	char crange[96];
	size_t side_len;
	char side[FETCH_SIDE_MAX];
	uint64_t dropped; /* body bytes read and dropped (buf NULL) */
	char errbuf[CURL_ERROR_SIZE];
	char range[48];
};

struct fetch {
	/* Set before the thread starts, then read-only. */
	char *base_url;
	char *auth_header; /* "Authorization: Bearer ..." or NULL; secret */
	char *cacert;
	char *pin;
	const char *protocols;
	bool insecure;
	bool is_ftp;   /* base_url is ftp:// (no HTTP status rules) */
	bool is_https; /* base_url is https:// (may multiplex) */
	long connect_timeout_s;
	long stall_timeout_s;
	unsigned max_inflight;
	unsigned max_background;
	/* Driven by the fetch thread; other threads only call
	 * curl_multi_wakeup().  Created here and cleaned up by fetch_free()
	 * after the join, so no two threads ever use it at once. */
	CURLM *multi;
	pthread_t thread;

	/* Protects the queues, rate, stop and exited. */
	pthread_mutex_t lock;
	struct fetch_queue demand;     /* protected by f->lock */
	struct fetch_queue background; /* protected by f->lock */
	uint64_t rate;		       /* protected by f->lock; 0 = unlimited */
	bool stop;		       /* protected by f->lock */
	bool exited; /* protected by f->lock: queues drained for good */

	/* Fetch thread only. */
	struct xfer *xfers; /* max_inflight slots */
	struct xfer *idle;
	unsigned inflight;
	unsigned bg_inflight;
	double budget; /* background bytes; negative is debt */
	uint64_t refill_ns;

	/* Counters; relaxed, as nothing else is ordered against them. */
	atomic_uint_fast64_t st_requests;
	atomic_uint_fast64_t st_bytes;
	atomic_uint_fast64_t st_demand;
	atomic_uint_fast64_t st_errors;
};

static pthread_once_t fetch_global_once = PTHREAD_ONCE_INIT;
static CURLcode fetch_global_rc;

static void fetch_global_init(void)
{
	fetch_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void queue_push(struct fetch_queue *q, struct fetch_req *req)
{
	req->next = NULL;
	if (q->tail)
		q->tail->next = req;
	else
		q->head = req;
	q->tail = req;
}

static struct fetch_req *queue_pop(struct fetch_queue *q)
{
	struct fetch_req *req = q->head;

	if (req) {
		q->head = req->next;
		if (!q->head)
			q->tail = NULL;
		req->next = NULL;
	}
	return req;
}

/* Take the whole queue. */
static struct fetch_req *queue_take(struct fetch_queue *q)
{
	struct fetch_req *head = q->head;

	q->head = q->tail = NULL;
	return head;
}

/* Length of a path or URL without its query string (never logged). */
static int no_query_len(const char *s)
{
	size_t n = strcspn(s, "?");

	return n > 1024 ? 1024 : (int)n;
}

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

static void fetch_bucket_refill(struct fetch *f, uint64_t now)
{
	double burst;

	/* Caller holds f->lock (f->rate). */
	if (f->rate == 0) {
		f->budget = 0;
		f->refill_ns = now;
		return;
	}
	f->budget += (double)f->rate * (double)(now - f->refill_ns) / 1e9;
	f->refill_ns = now;
	/* An idle spell earns at most 100 ms worth of bytes. */
	burst = (double)f->rate / 10;
	if (f->budget > burst)
		f->budget = burst;
}

static bool fetch_bg_may_start(const struct fetch *f)
{
	return f->bg_inflight < f->max_background &&
	       (f->rate == 0 || f->budget >= 0);
}

/* How long the thread may sleep before the bucket lets the next
 * background request go.  Caller holds f->lock. */
static int fetch_pacing_wait_ms(const struct fetch *f)
{
	double ms;

	if (!f->background.head || f->inflight >= f->max_inflight ||
	    f->bg_inflight >= f->max_background || f->rate == 0 ||
	    f->budget >= 0)
		return FETCH_POLL_MS;
	/* Rounded up, so the thread does not wake just short of it. */
	ms = -f->budget * 1000 / (double)f->rate + 1;
	return ms > FETCH_POLL_MS ? FETCH_POLL_MS : (int)ms;
}

/* Hand a finished request back: counters, then done() (no lock held). */
static void fetch_complete(struct fetch *f, struct fetch_req *req, int r)
{
	req->result = r;
	atomic_fetch_add_explicit(&f->st_requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->st_bytes, req->got, memory_order_relaxed);
	if (req->prio == FETCH_PRIO_DEMAND)
		atomic_fetch_add_explicit(&f->st_demand, 1,
					  memory_order_relaxed);
	if (r < 0)
		atomic_fetch_add_explicit(&f->st_errors, 1,
					  memory_order_relaxed);
	log_debug(LOG_CAT_FETCH,
		  "fetch %.*s: result %d, HTTP %ld, %zu bytes%s%s",
		  no_query_len(req->path), req->path, r, req->http_status,
		  req->got, r < 0 ? ": " : "", r < 0 ? req->errmsg : "");
	req->done(req);
}

static int fetch_errmsg(struct fetch_req *req, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Set req->errmsg; returns r. */
static int fetch_errmsg(struct fetch_req *req, int r, const char *fmt, ...)
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
 * the range asked, and consistent with its total. */
static bool content_range_matches(const char *s, uint64_t off, uint64_t len)
{
	uint64_t first, last, total;

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
		if (!content_range_matches(x->crange, req->off, req->len)) {
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
	if (final && req->len > 0 && req->got != req->len)
		return fetch_errmsg(req, -EBADMSG,
				    "range reply: %zu bytes, not %" PRIu64,
				    req->got, req->len);
	return 0;
}

/* A non-2xx answer: "HTTP N: <the JSON body's error field>". */
static int xfer_status_error(struct xfer *x, long status)
{
	struct fetch_req *req = x->req;
	json_error_t jerr;
	json_t *root = json_loadb(x->side, x->side_len, 0, &jerr);
	const char *e = json_string_value(json_object_get(root, "error"));
	char shown[160];
	int r;

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
	if (e) {
		copy_printable(shown, sizeof(shown), e, strlen(e));
		fetch_errmsg(req, r, "HTTP %ld: %s", status, shown);
	} else {
		fetch_errmsg(req, r, "HTTP %ld", status);
	}
	json_decref(root);
	return r;
}

/* The result of a finished transfer. */
static int xfer_result(struct xfer *x, CURLcode cc)
{
	struct fetch_req *req = x->req;
	long status = 0;
	int r;

	if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status) !=
	    CURLE_OK)
		status = 0;
	req->http_status = x->f->is_ftp ? 0 : status;
	if (x->err < 0)
		return x->err; /* errmsg already says why */
	if (cc != CURLE_OK) {
		r = fetch_map_curl(x, cc);
		return fetch_errmsg(req, r, "%s",
				    x->errbuf[0] ? x->errbuf
						 : curl_easy_strerror(cc));
	}
	if (x->f->is_ftp) {
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
	}
	return n;
}

/* At the first body byte the headers are complete: decide where the
 * body goes, and refuse a bad answer before any of it reaches buf. */
static int xfer_first_byte(struct xfer *x)
{
	long status = 0;

	x->checked = true;
	if (x->f->is_ftp)
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
	struct fetch *f = x->f;
	struct fetch_req *req = x->req;
	char line[FETCH_HEADER_VAL_MAX + 32];
	int r = 0;

	if (f->auth_header && !f->is_ftp)
		r = slist_add(&x->headers, f->auth_header);
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
	struct fetch *f = x->f;
	struct fetch_req *req = x->req;
	CURL *e = x->easy;
	CURLcode cc = CURLE_OK;

	setopt_chain(cc, e, CURLOPT_URL, x->url);
	setopt_chain(cc, e, CURLOPT_PRIVATE, (void *)x);
	setopt_chain(cc, e, CURLOPT_NOSIGNAL, 1L);
	setopt_chain(cc, e, CURLOPT_PROTOCOLS_STR, f->protocols);
	setopt_chain(cc, e, CURLOPT_REDIR_PROTOCOLS_STR, f->protocols);
	setopt_chain(cc, e, CURLOPT_FOLLOWLOCATION, 0L);
	setopt_chain(cc, e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* Over TLS, wait for a connection that may multiplex (ALPN tells
	 * after the handshake) rather than open more.  Not over http://:
	 * curl would learn it cannot multiplex only from the first reply,
	 * so one slow request would hold up the others. */
	if (f->is_https)
		setopt_chain(cc, e, CURLOPT_PIPEWAIT, 1L);
	setopt_chain(cc, e, CURLOPT_CONNECTTIMEOUT, f->connect_timeout_s);
	setopt_chain(cc, e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	setopt_chain(cc, e, CURLOPT_LOW_SPEED_TIME, f->stall_timeout_s);
	setopt_chain(cc, e, CURLOPT_ERRORBUFFER, x->errbuf);
	setopt_chain(cc, e, CURLOPT_WRITEFUNCTION, xfer_write_cb);
	setopt_chain(cc, e, CURLOPT_WRITEDATA, (void *)x);
	setopt_chain(cc, e, CURLOPT_HEADERFUNCTION, xfer_header_cb);
	setopt_chain(cc, e, CURLOPT_HEADERDATA, (void *)x);
	setopt_chain(cc, e, CURLOPT_USERAGENT, "vmferry");
	if (x->headers)
		setopt_chain(cc, e, CURLOPT_HTTPHEADER, x->headers);
	if (f->cacert)
		setopt_chain(cc, e, CURLOPT_CAINFO, f->cacert);
	if (f->pin)
		setopt_chain(cc, e, CURLOPT_PINNEDPUBLICKEY, f->pin);
	if (f->insecure) {
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
	return cc;
}

/* Set up x for req and add it to the multi handle.  Returns 0, or
 * -errno with req->errmsg set. */
static int xfer_start(struct fetch *f, struct xfer *x, struct fetch_req *req)
{
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
	x->crange[0] = '\0';
	x->side_len = 0;
	x->dropped = 0;
	x->errbuf[0] = '\0';

	if (!strcmp(method, "HEAD"))
		head = true;
	else if (!strcmp(method, "PUT") || !strcmp(method, "POST"))
		upload = true;
	else if (strcmp(method, "GET") != 0)
		return fetch_errmsg(req, -EINVAL, "unsupported method");
	if (req->len > 0 && (head || upload))
		return fetch_errmsg(req, -EINVAL, "a range needs GET");
	if (upload && f->is_ftp)
		return fetch_errmsg(req, -EINVAL, "ftp is read-only");
	if (req->len > 0 && req->off > UINT64_MAX - (req->len - 1))
		return fetch_errmsg(req, -EINVAL, "range overflows");
	if (!header_value_ok(req->content_type))
		return fetch_errmsg(req, -EINVAL, "bad content type");
	for (unsigned i = 0; i < FETCH_MAX_EXTRA_HEADERS; i++)
		if (!header_value_ok(req->extra_headers[i]))
			return fetch_errmsg(req, -EINVAL, "bad extra header");

	url_len = strlen(f->base_url) + strlen(req->path) + 1;
	x->url = malloc(url_len);
	if (!x->url)
		return fetch_errmsg(req, -ENOMEM, "out of memory");
	snprintf(x->url, url_len, "%s%s", f->base_url, req->path);
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
	mc = curl_multi_add_handle(f->multi, x->easy);
	if (mc != CURLM_OK)
		return fetch_errmsg(
		    req, mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO,
		    "adding transfer: %s", curl_multi_strerror(mc));
	log_debug(LOG_CAT_FETCH, "fetch %s %.*s%s%s%s", method,
		  no_query_len(req->path), req->path, req->len ? " [" : "",
		  req->len ? x->range : "", req->len ? "]" : "");
	return 0;
}

/* Give x back to the pool and complete its request with r. */
static void xfer_finish(struct fetch *f, struct xfer *x, int r)
{
	struct fetch_req *req = x->req;

	free(x->url);
	x->url = NULL;
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	x->req = NULL;
	x->next_idle = f->idle;
	f->idle = x;
	f->inflight--;
	if (x->background) {
		f->bg_inflight--;
		/* Settle the charge: refund what was reserved and did not
		 * come, or charge what came unreserved. */
		f->budget += (double)x->reserved - (double)req->got;
	}
	fetch_complete(f, req, r);
}

static void fetch_start_one(struct fetch *f, struct fetch_req *req)
{
	struct xfer *x = f->idle;
	int r;

	/* inflight <= max_inflight == number of slots. */
	assert(x);
	f->idle = x->next_idle;
	x->background = req->prio == FETCH_PRIO_BACKGROUND;
	x->reserved = x->background ? req->len : 0;
	r = xfer_start(f, x, req);
	if (r < 0)
		xfer_finish(f, x, r);
}

/* Start what may start now: demand first, then background within its
 * cap and the pacing budget.  Returns true if the engine is stopping;
 * *ret_wait_ms is how long the thread may sleep. */
static bool fetch_start_requests(struct fetch *f, int *ret_wait_ms)
{
	struct fetch_req *batch = NULL, **tail = &batch, *req;
	bool stop;

	mutex_lock(&f->lock);
	stop = f->stop;
	*ret_wait_ms = FETCH_POLL_MS;
	if (!stop) {
		fetch_bucket_refill(f, now_ns());
		while (f->inflight < f->max_inflight) {
			req = queue_pop(&f->demand);
			if (!req && fetch_bg_may_start(f))
				req = queue_pop(&f->background);
			if (!req)
				break;
			f->inflight++;
			if (req->prio == FETCH_PRIO_BACKGROUND) {
				f->bg_inflight++;
				f->budget -= (double)req->len;
			}
			*tail = req;
			tail = &req->next;
		}
		*ret_wait_ms = fetch_pacing_wait_ms(f);
	}
	mutex_unlock(&f->lock);

	while (batch) {
		req = batch;
		batch = req->next;
		req->next = NULL;
		fetch_start_one(f, req);
	}
	return stop;
}

/* Complete finished transfers; returns how many. */
static unsigned fetch_reap(struct fetch *f)
{
	unsigned n = 0;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(f->multi, &left))) {
		CURL *e = msg->easy_handle;
		CURLcode cc = msg->data.result;
		char *priv = NULL;
		struct xfer *x;
		int r;

		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg dies with curl_multi_remove_handle(): copied above. */
		if (curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
		    !priv)
			abort(); /* every handle we add carries its xfer */
		x = (struct xfer *)priv;
		r = xfer_result(x, cc);
		(void)curl_multi_remove_handle(f->multi, e); /* it is ours */
		xfer_finish(f, x, r);
		n++;
	}
	return n;
}

/* On stop: cancel what is in flight, then drain the queues until no
 * done() callback submits anything more. */
static void fetch_cancel_all(struct fetch *f)
{
	struct fetch_req *list, *req;

	for (unsigned i = 0; i < f->max_inflight; i++) {
		struct xfer *x = &f->xfers[i];

		if (!x->req)
			continue;
		(void)curl_multi_remove_handle(f->multi, x->easy);
		fetch_errmsg(x->req, -ECANCELED, "fetch engine stopping");
		xfer_finish(f, x, -ECANCELED);
	}
	for (;;) {
		mutex_lock(&f->lock);
		list = queue_take(&f->demand);
		if (!list)
			list = queue_take(&f->background);
		if (!list)
			f->exited = true;
		mutex_unlock(&f->lock);
		if (!list)
			break;
		while (list) {
			req = list;
			list = req->next;
			req->next = NULL;
			fetch_errmsg(req, -ECANCELED, "fetch engine stopping");
			fetch_complete(f, req, -ECANCELED);
		}
	}
	for (unsigned i = 0; i < f->max_inflight; i++) {
		if (f->xfers[i].easy)
			curl_easy_cleanup(f->xfers[i].easy);
		f->xfers[i].easy = NULL;
	}
}

static void *fetch_thread(void *opaque)
{
	struct fetch *f = opaque;
	int wait_ms, running;
	CURLMcode mc;

	for (;;) {
		if (fetch_start_requests(f, &wait_ms))
			break;
		mc = curl_multi_perform(f->multi, &running);
		if (mc != CURLM_OK)
			log_debug(LOG_CAT_FETCH,
				  "fetch: curl_multi_perform: %s",
				  curl_multi_strerror(mc));
		/* A freed slot may start a queued request at once. */
		if (fetch_reap(f) > 0)
			continue;
		mc = curl_multi_poll(f->multi, NULL, 0, wait_ms, NULL);
		if (mc != CURLM_OK) {
			/* Only out of memory: back off rather than spin. */
			log_debug(LOG_CAT_FETCH, "fetch: curl_multi_poll: %s",
				  curl_multi_strerror(mc));
			nanosleep(&(struct timespec){.tv_nsec = 10000000},
				  NULL);
		}
	}
	fetch_cancel_all(f);
	return NULL;
}

/* Everything but the thread (not running, or joined). */
static void fetch_destroy(struct fetch *f)
{
	if (!f)
		return;
	if (f->multi)
		(void)curl_multi_cleanup(f->multi); /* no handles are left */
	free(f->xfers);
	free(f->base_url);
	if (f->auth_header) {
		explicit_bzero(f->auth_header, strlen(f->auth_header));
		free(f->auth_header);
	}
	free(f->cacert);
	free(f->pin);
	if (pthread_mutex_destroy(&f->lock) != 0)
		abort();
	free(f);
}

static void fetch_destroyp(struct fetch **f)
{
	fetch_destroy(*f);
}

static int fetch_strdup(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int fetch_configure(struct fetch *f, const struct fetch_config *cfg)
{
	int r;

	f->connect_timeout_s = cfg->connect_timeout_s ?: 10;
	f->stall_timeout_s = cfg->stall_timeout_s ?: 30;
	f->max_inflight = cfg->max_inflight ?: 8;
	f->max_background = cfg->max_background ?: 4;
	if (!cfg->max_background && f->max_background >= f->max_inflight)
		f->max_background = f->max_inflight - 1;
	if (!cfg->base_url || f->connect_timeout_s < 0 ||
	    f->stall_timeout_s < 0 || f->max_inflight < 2 ||
	    f->max_inflight > FETCH_MAX_INFLIGHT ||
	    f->max_background >= f->max_inflight)
		return -EINVAL;
	if (cfg->token && *cfg->token) {
		size_t len;

		if (!token_ok(cfg->token))
			return -EINVAL;
		len = strlen("Authorization: Bearer ") + strlen(cfg->token) + 1;
		f->auth_header = malloc(len);
		if (!f->auth_header)
			return -ENOMEM;
		snprintf(f->auth_header, len, "Authorization: Bearer %s",
			 cfg->token);
	}
	r = fetch_strdup(cfg->base_url, &f->base_url);
	if (r == 0)
		r = fetch_strdup(cfg->cacert, &f->cacert);
	if (r == 0)
		r = fetch_strdup(cfg->pin_sha256, &f->pin);
	if (r < 0)
		return r;
	f->insecure = cfg->insecure;
	f->protocols = cfg->allow_plain ? "https,http,ftp" : "https";
	f->is_ftp = strncasecmp(f->base_url, "ftp://", 6) == 0;
	f->is_https = strncasecmp(f->base_url, "https://", 8) == 0;
	return 0;
}

int fetch_new(const struct fetch_config *cfg, struct fetch **ret)
{
	_cleanup_(fetch_destroyp) struct fetch *f = NULL;
	sigset_t all, old;
	CURLMcode mc = CURLM_OK;
	int r;

	if (pthread_once(&fetch_global_once, fetch_global_init) != 0)
		abort();
	if (fetch_global_rc != CURLE_OK)
		return -EIO;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	if (pthread_mutex_init(&f->lock, NULL) != 0)
		abort();
	r = fetch_configure(f, cfg);
	if (r < 0)
		return r;

	f->xfers = calloc(f->max_inflight, sizeof(*f->xfers));
	if (!f->xfers)
		return -ENOMEM;
	for (unsigned i = f->max_inflight; i-- > 0;) {
		f->xfers[i].f = f;
		f->xfers[i].next_idle = f->idle;
		f->idle = &f->xfers[i];
	}
	f->refill_ns = now_ns();

	f->multi = curl_multi_init();
	if (!f->multi)
		return -ENOMEM;
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(f->multi, CURLMOPT_PIPELINING,
				       (long)CURLPIPE_MULTIPLEX);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
				       (long)f->max_inflight);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(f->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
				       (long)f->max_inflight);
	if (mc != CURLM_OK)
		return -EIO;

	/* The thread inherits a mask with every signal blocked. */
	sigfillset(&all);
	if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
		abort();
	r = -pthread_create(&f->thread, NULL, fetch_thread, f);
	if (pthread_sigmask(SIG_SETMASK, &old, NULL) != 0)
		abort();
	if (r < 0)
		return r;
	*ret = steal_ptr(&f);
	return 0;
}

void fetch_free(struct fetch *f)
{
	CURLMcode mc;

	if (!f)
		return;
	mutex_lock(&f->lock);
	f->stop = true;
	mutex_unlock(&f->lock);
	mc = curl_multi_wakeup(f->multi);
	if (mc != CURLM_OK)
		abort(); /* only fails on a bad handle */
	if (pthread_join(f->thread, NULL) != 0)
		abort();
	fetch_destroy(f);
}

void fetch_submit(struct fetch *f, struct fetch_req *req)
{
	bool exited;

	assert(f && req && req->path && req->done);
	assert(req->prio == FETCH_PRIO_DEMAND ||
	       req->prio == FETCH_PRIO_BACKGROUND);
	assert(req->len == 0 || (req->buf && req->buf_len >= req->len));
	req->result = 0;
	req->http_status = 0;
	req->got = 0;
	req->errmsg[0] = '\0';
	req->priv = NULL;

	mutex_lock(&f->lock);
	exited = f->exited;
	if (!exited)
		queue_push(req->prio == FETCH_PRIO_DEMAND ? &f->demand
							  : &f->background,
			   req);
	mutex_unlock(&f->lock);
	if (exited) {
		/* Only a submit racing with the end of fetch_free() gets
		 * here; done() then runs on this thread. */
		fetch_errmsg(req, -ECANCELED, "fetch engine stopping");
		fetch_complete(f, req, -ECANCELED);
		return;
	}
	if (curl_multi_wakeup(f->multi) != CURLM_OK)
		abort(); /* only fails on a bad handle */
}

/* fetch_run()'s completion, on the caller's stack. */
struct fetch_waiter {
	pthread_mutex_t lock; /* protects done */
	pthread_cond_t cond;
	bool done;
};

static void fetch_run_done(struct fetch_req *req)
{
	struct fetch_waiter *w = req->opaque;

	/* Signal under the lock: once it is released, fetch_run() may
	 * return and w is gone. */
	mutex_lock(&w->lock);
	w->done = true;
	if (pthread_cond_signal(&w->cond) != 0)
		abort();
	mutex_unlock(&w->lock);
}

int fetch_run(struct fetch *f, struct fetch_req *req)
{
	struct fetch_waiter w = {.done = false};

	/* done() runs on the fetch thread: waiting there would deadlock. */
	assert(!pthread_equal(pthread_self(), f->thread));
	if (pthread_mutex_init(&w.lock, NULL) != 0 ||
	    pthread_cond_init(&w.cond, NULL) != 0)
		abort();
	req->done = fetch_run_done;
	req->opaque = &w;
	fetch_submit(f, req);
	mutex_lock(&w.lock);
	while (!w.done)
		if (pthread_cond_wait(&w.cond, &w.lock) != 0)
			abort();
	mutex_unlock(&w.lock);
	if (pthread_cond_destroy(&w.cond) != 0 ||
	    pthread_mutex_destroy(&w.lock) != 0)
		abort();
	return req->result;
}

void fetch_set_background_rate(struct fetch *f, uint64_t bytes_per_sec)
{
	mutex_lock(&f->lock);
	f->rate = bytes_per_sec;
	mutex_unlock(&f->lock);
	/* Waiting background requests may go now. */
	if (curl_multi_wakeup(f->multi) != CURLM_OK)
		abort();
}

void fetch_get_stats(struct fetch *f, struct fetch_stats *ret)
{
	ret->requests =
	    atomic_load_explicit(&f->st_requests, memory_order_relaxed);
	ret->bytes = atomic_load_explicit(&f->st_bytes, memory_order_relaxed);
	ret->demand_requests =
	    atomic_load_explicit(&f->st_demand, memory_order_relaxed);
	ret->errors = atomic_load_explicit(&f->st_errors, memory_order_relaxed);
}
