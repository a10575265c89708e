/* SPDX-License-Identifier: MIT */
/* Read routes: images, metadata (with the lease), history, versions,
 * the access check a caching proxy asks.
 *
 * A version's data is streamed: a reader callback (struct data_reader,
 * owned by its libmicrohttpd response) reads one block at a time from
 * the store and synthesises zero blocks, so memory does not grow with
 * the range asked for.  The reader runs on the connection's thread and
 * shares nothing but the counters.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "manifest.h"

#include "auth.h"
#include "history.h"
#include "http_lease.h"
#include "http_read.h"
#include "range.h"
#include "store.h"
#include "versions.h"
#include "zrange.h"

#define IMMUTABLE   "public, max-age=31536000, immutable"
#define READ_BUFFER (64u * 1024) /* bytes per reader callback */
#define ETAG_LEN    (VMF_HASH_HEX_LEN + 2)

/* Answer a failed versions_*() call: 404 for a missing version, 500
 * (logged: the store is damaged or the disk failing) otherwise. */
static enum MHD_Result reply_versions_error(struct http_request *req, int r)
{
	if (r == -ENOENT && req->route == ROUTE_IMAGE)
		return http_reply_error(req, 404, "no image %s", req->name);
	if (r == -ENOENT)
		return http_reply_error(req, 404,
					"image %s has no version %" PRIu64,
					req->name, req->version);
	log_error_errno(r, "%s %s: %m", req->method, req->path);
	return http_reply_error(req, 500, "server error reading image %s",
				req->name);
}

enum MHD_Result http_read_images(struct http_request *req)
{
	struct versions *v = req->ctx->versions;
	char **names = NULL;
	size_t n = 0;
	json_t *list, *body;
	int r;

	r = versions_names(v, &names, &n);
	if (r < 0) {
		log_error_errno(r, "listing images: %m");
		return http_reply_error(req, 500,
					"server error listing images");
	}
	list = json_array();
	for (size_t i = 0; list && i < n; i++) {
		struct version_info info;
		uint64_t cur;
		int fd;

		if (!auth_can_read(req->token, names[i]) ||
		    versions_current(v, names[i], &cur) < 0)
			continue;
		fd = versions_open_manifest(v, names[i], cur, false, &info);
		if (fd < 0) {
			log_warn_errno(fd, "image %s version %" PRIu64 ": %m",
				       names[i], cur);
			continue;
		}
		closep(&fd);
		json_array_append_new(
		    list,
		    json_pack("{s:s, s:I, s:I, s:I, s:o}", "name", names[i],
			      "version", (json_int_t)cur, "size",
			      (json_int_t)info.hdr.image_size, "block_size",
			      (json_int_t)info.hdr.block_size, "lease",
			      http_lease_public_of(req, names[i])));
	}
	versions_names_free(names, n);
	body = json_pack("{s:o*}", "images", list);
	return http_reply_json(req, 200, body, "no-cache");
}

/* The fields of version n of req->name that a client checks its
 * manifest against (docs/protocol.md), as a new JSON object into *ret;
 * -ENOENT if there is no version n, or a versions_*() error. */
static int version_fields(struct http_request *req, uint64_t n, json_t **ret)
{
	char hex[VMF_HASH_HEX_LEN + 1];
	struct version_info info;
	json_t *o;
	int fd;

	fd = versions_open_manifest(req->ctx->versions, req->name, n, true,
				    &info);
	if (fd < 0)
		return fd;
	closep(&fd);
	hash_to_hex(info.sha256, VMF_HASH_LEN, hex);
	o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "name", req->name,
		      "version", (json_int_t)n, "size",
		      (json_int_t)info.hdr.image_size, "block_size",
		      (json_int_t)info.hdr.block_size, "blocks",
		      (json_int_t)info.hdr.nblocks, "manifest_size",
		      (json_int_t)info.manifest_size, "manifest_sha256", hex);
	if (!o)
		return -ENOMEM;
	*ret = o;
	return 0;
}

enum MHD_Result http_read_image(struct http_request *req)
{
	struct versions *v = req->ctx->versions;
	_cleanup_free_ uint64_t *nums = NULL;
	_cleanup_(json_decrefp) json_t *body = NULL;
	json_t *policy = NULL, *list, *rest;
	size_t n = 0;
	uint64_t cur;
	int r;

	r = versions_current(v, req->name, &cur);
	if (r < 0)
		return reply_versions_error(req, r);
	req->version = cur;
	r = version_fields(req, cur, &body);
	if (r < 0)
		return reply_versions_error(req, r);
	r = versions_numbers(v, req->name, &nums, &n);
	if (r < 0)
		return reply_versions_error(req, r);
	r = versions_policy(v, req->name, &policy);
	if (r < 0) {
		/* The policy carries expiry, which clients must enforce:
		 * serving an image without it would be worse than failing. */
		log_error_errno(r, "image %s: policy.json: %m", req->name);
		return http_reply_error(
		    req, 500, "image %s has an unreadable policy", req->name);
	}
	list = json_array();
	for (size_t i = 0; list && i < n; i++)
		json_array_append_new(list, json_integer((json_int_t)nums[i]));
	rest = json_pack("{s:o*, s:o, s:o*}", "versions", list, "policy",
			 policy, "lease", http_lease_public(req));
	if (!rest || json_object_update(body, rest) < 0)
		json_decrefp(&body);
	json_decref(rest);
	return http_reply_json(req, 200, steal_ptr(&body), "no-cache");
}

enum MHD_Result http_read_version_meta(struct http_request *req)
{
	json_t *body = NULL;
	int r;

	r = version_fields(req, req->version, &body);
	if (r < 0)
		return reply_versions_error(req, r);
	/* Like the image's metadata, and for the same reason: a client
	 * checks a manifest that may come through caches against this. */
	return http_reply_json(req, 200, body, "no-cache");
}

enum MHD_Result http_read_history(struct http_request *req)
{
	json_t *list = NULL;
	int r;

	r = history_list(req->ctx->versions, req->name, &list);
	if (r == -ENOENT)
		return http_reply_error(req, 404, "no image %s", req->name);
	if (r < 0) {
		log_error_errno(r, "%s %s: %m", req->method, req->path);
		return http_reply_error(
		    req, 500, "server error reading image %s", req->name);
	}
	return http_reply_json(
	    req, 200,
	    json_pack("{s:s, s:o}", "name", req->name, "versions", list),
	    "no-cache");
}

enum MHD_Result http_read_access(struct http_request *req)
{
	struct MHD_Response *resp;

	/* Token and grant were checked before this runs: that is the
	 * whole answer.  Whether NAME exists is the data route's to say. */
	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (resp && MHD_add_response_header(resp, "Cache-Control",
					    "no-store") != MHD_YES) {
		MHD_destroy_response(resp);
		resp = NULL;
	}
	return http_queue(req, 204, resp, 0);
}

enum MHD_Result http_read_stats(struct http_request *req)
{
	struct http_stats *s = &req->ctx->stats;
	json_t *body;

#define GET(f) (json_int_t) atomic_load_explicit(&s->f, memory_order_relaxed)
	body = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "requests",
			 GET(requests), "data_requests", GET(data_requests),
			 "data_bytes", GET(data_bytes), "manifest_requests",
			 GET(manifest_requests), "bytes_sent", GET(bytes_sent),
			 "errors_4xx", GET(errors_4xx), "errors_5xx",
			 GET(errors_5xx));
#undef GET
	return http_reply_json(req, 200, body, "no-store");
}

struct data_reader {
	struct http_stats *stats;
	struct store *store;
	int mfd; /* the version's manifest */
	struct manifest_header hdr;
	uint64_t start; /* image offset of response byte 0 */
	uint64_t blkno; /* block open in bfd, or UINT64_MAX */
	int bfd;	/* -1 for a zero block */
	char what[96];	/* "image N" for the log */
};

static void data_reader_free(void *cls)
{
	struct data_reader *d = cls;

	closep(&d->mfd);
	closep(&d->bfd);
	free(d);
}

/* Make blkno the current block: look up its hash, open it. */
static int data_reader_seek(struct data_reader *d, uint64_t blkno)
{
	uint8_t h[VMF_HASH_LEN];
	int r;

	closep(&d->bfd);
	d->bfd = -1;
	d->blkno = UINT64_MAX;
	r = full_pread(d->mfd, h, sizeof(h),
		       (off_t)manifest_entry_offset(blkno));
	if (r < 0)
		return r;
	if (!hash_is_zero(h)) {
		d->bfd = store_open_block(d->store, h);
		if (d->bfd < 0)
			return d->bfd;
	}
	d->blkno = blkno;
	return 0;
}

/* Up to max bytes of the range from pos into buf: at most to the end of
 * a block.  Returns the count, 0 past the end of the image, or -errno
 * (logged). */
static ssize_t data_reader_fill(struct data_reader *d, uint64_t pos, char *buf,
				size_t max)
{
	uint64_t off = d->start + pos;
	uint64_t blkno = off / d->hdr.block_size;
	uint32_t within = (uint32_t)(off % d->hdr.block_size);
	size_t n = manifest_block_len(&d->hdr, blkno) - within;
	int r;

	if (off >= d->hdr.image_size)
		return 0;
	if (n > max)
		n = max;
	if (blkno != d->blkno) {
		r = data_reader_seek(d, blkno);
		if (r < 0)
			goto fail;
	}
	if (d->bfd < 0) {
		memset(buf, 0, n);
	} else {
		r = full_pread(d->bfd, buf, n, within);
		if (r < 0)
			goto fail;
	}
	return (ssize_t)n;
fail:
	log_error_errno(r, "%s block %" PRIu64 ": %m", d->what, blkno);
	return r;
}

static ssize_t data_reader_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct data_reader *d = cls;
	ssize_t n = data_reader_fill(d, pos, buf, max);

	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	/* The client sees a short body; it never sees wrong bytes. */
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	http_count(&d->stats->data_bytes, (uint64_t)n);
	http_count(&d->stats->bytes_sent, (uint64_t)n);
	return n;
}

static struct data_reader *data_reader_new(struct http_request *req, int *mfd,
					   const struct version_info *info,
					   const struct range *rg)
{
	struct data_reader *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->stats = &req->ctx->stats;
	d->store = req->ctx->store;
	d->mfd = steal_fd(mfd);
	d->bfd = -1;
	d->hdr = info->hdr;
	d->start = rg->off;
	d->blkno = UINT64_MAX;
	snprintf(d->what, sizeof(d->what), "image %s version %" PRIu64,
		 req->name, req->version);
	return d;
}

/* A range the client may take compressed (Vmferry-Accept-Encoding: zstd,
 * docs/protocol.md): read it whole, and answer with the zstd frame when
 * it saves enough, else with the bytes.  Sets *ret_zstd.  NULL on a
 * store error (the client retries) or no memory. */
static struct MHD_Response *zdata_response(struct http_request *req, int *mfd,
					   const struct version_info *info,
					   const struct range *rg,
					   bool *ret_zstd)
{
	struct data_reader *d = data_reader_new(req, mfd, info, rg);
	char *raw = d ? malloc(rg->len) : NULL;
	struct MHD_Response *resp = NULL;
	uint64_t got = 0;
	void *z = NULL;
	size_t zlen = 0;
	ssize_t n;
	int r;

	*ret_zstd = false;
	while (raw && got < rg->len) {
		n = data_reader_fill(d, got, raw + got, rg->len - got);
		if (n <= 0)
			goto out;
		got += (uint64_t)n;
	}
	if (!raw)
		goto out;
	r = zrange_compress(raw, rg->len, &z, &zlen);
	if (r < 0)
		goto out;
	http_count(&req->ctx->stats.data_bytes, rg->len);
	if (r > 0) {
		resp = MHD_create_response_from_buffer(zlen, z,
						       MHD_RESPMEM_MUST_FREE);
		if (resp)
			z = NULL;
		*ret_zstd = true;
		http_count(&req->ctx->stats.bytes_sent, zlen);
	} else {
		resp = MHD_create_response_from_buffer(rg->len, raw,
						       MHD_RESPMEM_MUST_FREE);
		if (resp)
			raw = NULL;
		http_count(&req->ctx->stats.bytes_sent, rg->len);
	}
out:
	free(z);
	free(raw);
	if (d)
		data_reader_free(d);
	return resp;
}

static struct MHD_Response *data_response(struct http_request *req, int *mfd,
					  const struct version_info *info,
					  const struct range *rg)
{
	struct data_reader *d = data_reader_new(req, mfd, info, rg);
	struct MHD_Response *resp;

	if (!d)
		return NULL;
	resp = MHD_create_response_from_callback(
	    rg->len, READ_BUFFER, data_reader_read, d, data_reader_free);
	if (!resp)
		data_reader_free(d);
	return resp;
}

static enum MHD_Result count_range_headers(void *cls, enum MHD_ValueKind kind,
					   const char *key, const char *value)
{
	(void)kind;
	(void)value;
	if (strcasecmp(key, "Range") == 0)
		(*(unsigned *)cls)++;
	return MHD_YES;
}

/* Does an If-None-Match list name etag?  (Weak comparison, RFC 9110
 * 13.1.2: "W/" prefixes are ignored.) */
static bool etag_listed(const char *list, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = list;

	while (*p) {
		p += strspn(p, " \t,");
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, etag, elen) == 0 &&
		    (p[elen] == '\0' || strchr(" \t,", p[elen])))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

static int add_headers(struct MHD_Response *resp, const char *etag)
{
	if (MHD_add_response_header(resp, "Accept-Ranges", "bytes") !=
		MHD_YES ||
	    MHD_add_response_header(resp, "ETag", etag) != MHD_YES ||
	    MHD_add_response_header(resp, "Cache-Control", IMMUTABLE) !=
		MHD_YES ||
	    MHD_add_response_header(resp, "Content-Type",
				    "application/octet-stream") != MHD_YES)
		return -ENOMEM;
	return 0;
}

/* Parse the request's Range against total.  Returns 0 with *rg (the
 * whole thing when there is no usable Range), 1 for a partial range, or
 * -1 after replying with an error itself. */
static int request_range(struct http_request *req, const char *etag,
			 uint64_t total, struct range *rg)
{
	const char *value = http_header(req, "Range");
	const char *if_range = http_header(req, "If-Range");
	unsigned nranges = 0;
	char cr[64];
	int r;

	*rg = (struct range){0, total};
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND,
				  count_range_headers, &nranges);
	if (nranges > 1) {
		http_reply_error(req, 400, "more than one Range header");
		return -1;
	}
	/* A stale If-Range (or a date: we send no Last-Modified) asks for
	 * the whole representation instead of the range. */
	if (!value || (if_range && strcmp(if_range, etag) != 0))
		return 0;
	r = range_parse(value, total, rg);
	if (r == 0)
		return 1;
	if (r == -ERANGE) {
		snprintf(cr, sizeof(cr), "bytes */%" PRIu64, total);
		http_reply_error_ex(
		    req, 416, NULL, "Content-Range", cr,
		    "range %s not satisfiable: the size is %" PRIu64, value,
		    total);
	} else if (r == -EOPNOTSUPP) {
		http_reply_error(req, 400, "multiple ranges are not supported");
	} else {
		http_reply_error(req, 400, "malformed Range header");
	}
	return -1;
}

enum MHD_Result http_read_version(struct http_request *req)
{
	bool data = req->route == ROUTE_DATA;
	struct MHD_Response *resp = NULL;
	_cleanup_close_ int fd = -1;
	char etag[ETAG_LEN + 1], hex[VMF_HASH_HEX_LEN + 1], cr[96];
	const char *inm;
	struct version_info info;
	struct range rg;
	uint64_t total;
	unsigned status;
	bool zstd = false;
	int partial;

	fd = versions_open_manifest(req->ctx->versions, req->name, req->version,
				    true, &info);
	if (fd < 0)
		return reply_versions_error(req, fd);
	hash_to_hex(info.sha256, VMF_HASH_LEN, hex);
	snprintf(etag, sizeof(etag), "\"%s\"", hex);
	total = data ? info.hdr.image_size : info.manifest_size;
	inm = http_header(req, "If-None-Match");
	if (inm && etag_listed(inm, etag)) {
		partial = 0;
		rg = (struct range){0, 0};
		status = 304;
	} else {
		partial = request_range(req, etag, total, &rg);
		if (partial < 0)
			return req->queued ? MHD_YES : MHD_NO;
		status = partial ? 206 : 200;
	}
	if (rg.len == 0)
		resp = MHD_create_response_from_buffer(0, NULL,
						       MHD_RESPMEM_PERSISTENT);
	else if (data && !req->head && rg.len <= ZRANGE_MAX &&
		 zrange_accepted(http_header(req, "Vmferry-Accept-Encoding")))
		resp = zdata_response(req, &fd, &info, &rg, &zstd);
	else if (data)
		resp = data_response(req, &fd, &info, &rg);
	else
		resp =
		    MHD_create_response_from_fd_at_offset64(rg.len, fd, rg.off);
	if (!resp)
		return MHD_NO;
	if (!data)
		fd = -1; /* the response owns it now */
	snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
		 rg.off, rg.off + rg.len - 1, total);
	if (add_headers(resp, etag) < 0 ||
	    (partial &&
	     MHD_add_response_header(resp, "Content-Range", cr) != MHD_YES) ||
	    (data && MHD_add_response_header(
			 resp, "Vary", "Vmferry-Accept-Encoding") != MHD_YES) ||
	    (zstd && MHD_add_response_header(resp, "Vmferry-Encoding",
					     "zstd") != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	if (!req->head && status != 304)
		http_count(data ? &req->ctx->stats.data_requests
				: &req->ctx->stats.manifest_requests,
			   1);
	/* Data bytes are counted as the reader hands them over. */
	return http_queue(req, status, resp, data ? 0 : rg.len);
}
