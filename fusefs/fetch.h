/* SPDX-License-Identifier: MIT */
/* Fetch engine: one thread owning a libcurl multi handle.
 *
 * Other threads hand it requests with fetch_submit() and learn the result
 * through the request's completion callback (called on the fetch thread;
 * it must not block) or by waiting in fetch_run().  No curl handle is
 * ever touched outside the fetch thread.
 *
 * Scheduling: demand requests (FETCH_PRIO_DEMAND) always start before
 * the others, then prefetch requests (FETCH_PRIO_PREFETCH: a boot
 * profile's blocks), then background ones.  Prefetch and background
 * requests together are capped at config.max_background in flight so
 * demand always finds a free slot; only background bytes are paced by
 * fetch_set_background_rate().  While demand is recent (bgshare.h:
 * in flight, or within a quiet time that grows with how often demand
 * comes back, at most 2 s), one background request at a time, paced to
 * a tenth of the fastest rate the engine has delivered.  Connections are
 * reused (HTTP/2 when the server offers it over TLS).
 *
 * Hygiene (every request): only https is allowed unless
 * config.allow_plain (then http and ftp too); no automatic decompression
 * (no Accept-Encoding); redirects are not followed; a transfer slower
 * than 1 byte/s for config.stall_timeout_s is aborted; TLS peer and host
 * verification are on unless config.insecure.  A range request
 * (req.len > 0) succeeds only on status 206 with one Content-Range of
 * exactly "bytes OFF-(OFF+LEN-1)/TOTAL" (TOTAL digits above the last
 * byte, or "*"), no Content-Encoding, and exactly LEN body bytes;
 * anything else is an error, and no byte of it is returned as data (a
 * wrong status or Content-Range is refused before any byte reaches
 * buf).  A whole-body request (req.len == 0) succeeds on 200 (or 201/204
 * for POST/PUT) with at most req.buf_len bytes; with buf NULL the body
 * (at most VMF_JSON_MAX bytes) is read and dropped.  The body of an
 * error reply never reaches buf.  Over ftp:// (read-only: GET and HEAD)
 * there is no status or header to check: a range must bring exactly LEN
 * bytes.  The stall timeout also bounds the wait for a reply, e.g. a
 * slow server-side commit after a POST.
 *
 * URLs: base_url + path.  With an empty base_url each path is a whole
 * URL (plain-server mounts, whose files may sit on other hosts after a
 * redirect); the scheme rules above hold for each.  Plain servers:
 * req.sink streams a whole body of any size; req.redirect asks for a
 * 3xx answer's target instead of an error; content_length and
 * range_total tell what the server said the file's length is.
 *
 * Errors in req->result: -ECONNREFUSED / -EHOSTUNREACH (cannot connect),
 * -ETIMEDOUT (connect timeout or stall), -EPERM (TLS: certificate or pin
 * does not verify), -EACCES (401/403), -ENOENT (404), -ERANGE (416),
 * -EBADMSG (a reply that breaks the rules above), -EFBIG (body larger
 * than buf_len), -EIO (other HTTP status or transfer error),
 * -EPROTONOSUPPORT (the URL's scheme is not allowed), -EINVAL (bad
 * request: method, a range with other than GET, a header value with a
 * line break, a malformed URL), -ENOMEM, -ECANCELED (engine stopping),
 * -EREMCHG (a 3xx answer, when req.redirect asked for it; otherwise a
 * 3xx is -EIO), or what req.sink returned.
 * req->errmsg holds one line of detail for the caller to log (curl's
 * error text, "HTTP 403: <body's error field>", or for a body that is
 * not vmferry's JSON "HTTP 503: <the body's text, trimmed>"); it never
 * contains the token.
 */
#ifndef VMFERRY_FETCH_H
#define VMFERRY_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "zpolicy.h"

struct fetch;
struct fetch_req;

#define FETCH_MAX_EXTRA_HEADERS 4

typedef void fetch_done_fn(struct fetch_req *req);

/* Takes (data, len), the next piece of a streamed body; returns 0, or
 * -errno to abort the transfer (the request then fails with it; set
 * req->errmsg to say why).  Runs on the fetch thread: it may hash and
 * queue what it gets, but every other transfer waits meanwhile, so it
 * is for requests that run alone (a full download). */
typedef int fetch_sink_fn(struct fetch_req *req, const void *data, size_t len);

enum fetch_prio {
	FETCH_PRIO_DEMAND,
	FETCH_PRIO_BACKGROUND,
	FETCH_PRIO_PREFETCH, /* after demand, before background; unpaced */
};

struct fetch_config {
	const char *base_url;	/* "https://host:port", copied */
	const char *token;	/* bearer token, copied, may be NULL */
	const char *cacert;	/* CA file, copied, may be NULL */
	const char *pin_sha256; /* "sha256//BASE64", copied, may be NULL */
	bool insecure;		/* skip TLS verification */
	bool allow_plain;	/* allow http:// and ftp:// */
	/* Ask vmferry-server for zstd ranges: never (OFF, the default),
	 * always (ON), or as measured (AUTO, zpolicy.h). */
	enum zpolicy_mode compress;
	long connect_timeout_s;	 /* default 10 */
	long stall_timeout_s;	 /* default 30 */
	unsigned max_inflight;	 /* default 8, at least 2 */
	unsigned max_background; /* default min(4, max_inflight - 1);
				  * must be < max_inflight */
};

struct fetch_req {
	/* Set by the caller, borrowed until completion. */
	const char *path;   /* appended to base_url, e.g. "/v1/images" */
	const char *method; /* NULL = GET; PUT, POST, HEAD, DELETE */
	const void *body;   /* request body for PUT/POST */
	size_t body_len;
	const char *content_type; /* for the body; NULL = octet-stream */
	/* "Name: value" lines; unused slots NULL. */
	const char *extra_headers[FETCH_MAX_EXTRA_HEADERS];
	uint64_t off, len; /* range request when len > 0 */
	void *buf;	   /* response body goes here (see above) */
	size_t buf_len;	   /* room in buf (>= len for a range) */
	enum fetch_prio prio;
	/* 0, or a now_ns() time: the request is abandoned then (-ETIMEDOUT),
	 * however long it waited in the queue or stalled on the wire. */
	uint64_t deadline_ns;
	fetch_done_fn *done; /* called once on the fetch thread */
	/* NULL, or called on the fetch thread (no engine lock held) each
	 * time the request is about to go on the wire; it may narrow the
	 * range (off, len and buf, within what was asked); must not
	 * block. */
	fetch_done_fn *started;
	void *opaque; /* for the caller */
	/* A whole-body GET (len 0, buf NULL) streamed to sink instead, of
	 * any length; got counts what sink took. */
	fetch_sink_fn *sink;
	/* If set, a 3xx answer with a Location completes with -EREMCHG
	 * and its target (absolute, as curl resolved it) copied here,
	 * when it fits in redirect_len. */
	char *redirect;
	size_t redirect_len;

	/* Set by the engine before done() is called. */
	int result;	  /* 0 or -errno (see above) */
	long http_status; /* 0 if no HTTP answer */
	size_t got;	  /* body bytes written to buf */
	/* The answer's Content-Length (FTP: the file size), -1 if none. */
	int64_t content_length;
	/* TOTAL of a 206's Content-Range, 0 if unknown ("*"). */
	uint64_t range_total;
	char errmsg[256]; /* detail when result < 0 */

	/* Engine-private. */
	struct fetch_req *next;
	void *priv;
};

/* Create the engine and start its thread (curl_global_init is done
 * once, here).  Returns 0, -EINVAL (a bad limit, no base_url, a token
 * that is not visible ASCII or longer than VMF_TOKEN_MAX), -ENOMEM or
 * -EIO.  The URL's scheme is checked by the first request. */
int fetch_new(const struct fetch_config *cfg, struct fetch **ret);

/* Stop the thread: requests not yet completed complete with -ECANCELED.
 * fetch_free(NULL) is a no-op. */
void fetch_free(struct fetch *f);

/* Queue req; never blocks on the network.  req must stay valid until
 * req->done has been called.  done() may submit again; it must not call
 * fetch_run() or fetch_free(). */
void fetch_submit(struct fetch *f, struct fetch_req *req);

/* Submit req (done and opaque are overwritten) and wait for it; returns
 * req->result.  Can block for as long as the timeouts allow. */
int fetch_run(struct fetch *f, struct fetch_req *req);

/* Complete every request submitted with this opaque that has not
 * started yet with -ECANCELED (their done() runs on the calling
 * thread, which must hold no lock done() takes).  Requests in flight
 * go on.  Returns how many were cancelled.  Any thread. */
unsigned fetch_cancel_queued(struct fetch *f, const void *opaque);

/* Pace background bytes (0 = unlimited).  Any thread. */
void fetch_set_background_rate(struct fetch *f, uint64_t bytes_per_sec);

/* True while a burst of demand that came after a gap began less than
 * 10 s ago (bgshare.h, BGSHARE_RECENT_NS: a guest reading), as of the
 * engine's last scheduling pass: a hint that the next background range
 * should be short.  Any thread. */
bool fetch_demand_recent(struct fetch *f);

struct fetch_stats {
	uint64_t requests;	  /* completed, any result */
	uint64_t bytes;		  /* body bytes received (decoded) */
	uint64_t wire_bytes;	  /* of which on the wire (compressed) */
	uint64_t demand_requests; /* of which demand */
	uint64_t errors;
	int64_t last_ok_wall; /* wall time of the last success; 0: none */
	struct zpolicy_stats compress; /* the compression policy's state */
};
/* Snapshot of the counters.  Any thread. */
void fetch_get_stats(struct fetch *f, struct fetch_stats *ret);

/* Length of a path or URL without its query string (never logged: it
 * may hold a CDN's signature), for "%.*s". */
static inline int no_query_len(const char *s)
{
	size_t n = strcspn(s, "?");

	return n > 1024 ? 1024 : (int)n;
}

#endif
