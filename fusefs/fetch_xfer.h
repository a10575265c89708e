/* SPDX-License-Identifier: MIT */
/* One transfer of the fetch engine: a fetch_req on a reusable easy handle.
 *
 * Internal to the fetch engine: used only by fetch.c; runs only on the
 * fetch thread, so nothing here takes a lock.  fetch.c owns the CURLM,
 * the slots (an array of struct xfer), the idle list and the pacing;
 * fetch_xfer.c owns each slot's easy handle, everything about one
 * request (URL, request headers, curl options, callbacks, reply checks)
 * and the mapping of CURLcodes and HTTP statuses onto -errno.
 *
 * A slot's life: xfer_init() once; then, per request, xfer_start(),
 * xfer_result() when curl reports it done (or xfer_cancel()), and
 * xfer_release(); xfer_fini() once at the end.
 */
#ifndef VMFERRY_FETCH_XFER_H
#define VMFERRY_FETCH_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <curl/curl.h>

#include "fetch.h"

#define FETCH_SIDE_MAX 1024 /* start of an error reply kept */

/* What every transfer needs from struct fetch_config.  Built by
 * xfer_config_init() before the fetch thread starts, then read-only;
 * fetch.c only stores it, and never reads its fields. */
struct xfer_config {
	char *base_url;
	char *auth_header; /* "Authorization: Bearer ..." or NULL; secret */
	char *cacert;
	char *pin;
	const char *protocols;
	bool insecure;
	long connect_timeout_s;
	long stall_timeout_s;
};

/* One transfer slot; used by the fetch thread only.  fetch.c allocates
 * the slots zeroed and owns the first six fields (set before
 * xfer_start()); all the others belong to fetch_xfer.c (fetch.c asks
 * xfer_busy() rather than reading req). */
struct xfer {
	/* fetch.c's: the idle list, background pacing, compression. */
	struct xfer *next_idle;
	bool background;   /* counts toward max_background */
	bool paced;	   /* charged to the pacing budget */
	uint64_t reserved; /* background bytes charged at start */
	bool zstd_ask;	   /* a range: ask for zstd (zpolicy.h) */
	uint64_t start_ns; /* when it started, for the policy's goodput */

	/* fetch_xfer.c's. */
	const struct xfer_config *xc;
	CURL *easy;	       /* created on first use, then reset and reused */
	struct fetch_req *req; /* NULL when idle */
	struct curl_slist *headers;
	char *url;
	bool is_ftp;   /* url is ftp:// (no HTTP status rules) */
	bool is_https; /* url is https:// (may multiplex) */

	/* Reply state, reset for every request. */
	int err;	   /* set by a callback that aborted the transfer */
	bool checked;	   /* status and headers checked at first body byte */
	bool error_body;   /* non-2xx: the body goes to side[], not buf */
	unsigned n_crange; /* Content-Range headers seen */
	bool crange_long;  /* one was too long to be valid */
	bool encoded;	   /* a Content-Encoding other than identity */
	bool zstd;	   /* Vmferry-Encoding: zstd (docs/protocol.md) */
	bool zdone;	   /* the zstd frame ended */
	void *zctx;	   /* ZSTD_DCtx, created on first use */
	uint64_t wire;	   /* body bytes as they came (compressed) */
	char crange[96];
	size_t side_len;
	char side[FETCH_SIDE_MAX];
	uint64_t dropped; /* body bytes read and dropped (buf NULL) */
	uint64_t total;	  /* TOTAL of the Content-Range checked, 0: "*" */
	char errbuf[CURL_ERROR_SIZE];
	char range[48];
};

/* Fill *xc from cfg: timeouts (with their defaults), copies of base_url,
 * cacert and pin, the Authorization header built from the token, the
 * allowed protocols.  Returns 0, -EINVAL (no base_url, a negative
 * timeout, a token that is not visible ASCII or longer than
 * VMF_TOKEN_MAX) or -ENOMEM.  *xc must start zeroed; whatever the
 * result, xfer_config_fini() frees what it holds. */
int xfer_config_init(struct xfer_config *xc, const struct fetch_config *cfg);

/* Free what xc holds, wiping the token first.  A no-op on a zeroed xc. */
void xfer_config_fini(struct xfer_config *xc);

/* Make zeroed slot x use xc, which must outlive it.  No easy handle is
 * created until the first xfer_start(). */
void xfer_init(struct xfer *x, const struct xfer_config *xc);

/* Free idle x's easy handle, if any. */
void xfer_fini(struct xfer *x);

static inline bool xfer_busy(const struct xfer *x)
{
	return x->req != NULL;
}

/* Take req into idle x, set up x's easy handle for it (URL, range,
 * headers, options, callbacks) and add the handle to multi.  Returns 0,
 * or -errno with req->errmsg set: -EINVAL (bad method, a range with
 * other than GET, an upload over ftp, a range that overflows, a header
 * value with a line break or too long), -ENOMEM, -EIO, or what a failed
 * curl option maps to.  Either way x holds req until xfer_release().
 * Never blocks. */
int xfer_start(struct xfer *x, struct fetch_req *req, CURLM *multi);

/* The slot whose transfer easy is (every handle xfer_start() adds carries
 * its slot); aborts if it has none. */
struct xfer *xfer_of(CURL *easy);

/* The result of x's finished transfer, which curl ended with cc: 0 or
 * -errno as listed in fetch.h, with req->errmsg set on error.  Sets
 * req->http_status.  Call before removing the handle from the multi. */
int xfer_result(struct xfer *x, CURLcode cc);

/* Abort busy x's transfer: remove its handle from multi and set its
 * request's errmsg for -ECANCELED.  x stays busy until xfer_release(). */
void xfer_cancel(struct xfer *x, CURLM *multi);

/* Free what busy x holds for its request (the handle is kept for the
 * next one) and make x idle.  Returns the request, for the caller to
 * complete; req->got counts the body bytes it received. */
struct fetch_req *xfer_release(struct xfer *x);

/* Set req->errmsg from fmt; returns r. */
int fetch_errmsg(struct fetch_req *req, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
