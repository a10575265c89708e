/* SPDX-License-Identifier: MIT */
/* Write routes: block uploads, commits and the body of a lease request.
 *
 * Owns each request's body: a buffer of at most body_max bytes for
 * blocks and hash lists, or for a commit a temporary file in DIR/tmp
 * that grows with the upload (memory does not), checked against the
 * manifest header as soon as it has arrived.  One thread per request at
 * a time; the store and versions modules do their own locking.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "manifest.h"
#include "util.h"

#include "auth.h"
#include "http_lease.h"
#include "http_profile.h"
#include "http_vm.h"
#include "http_write.h"
#include "commit.h"
#include "store.h"
#include "upload_parse.h"
#include "versions.h"

#define MISSING_MAX (VMF_MISSING_MAX_HASHES * VMF_HASH_LEN)
/* The largest manifest any valid header can describe. */
#define COMMIT_MAX              \
	(MANIFEST_HEADER_SIZE + \
	 VMF_IMAGE_SIZE_MAX / VMF_BLOCK_SIZE_MIN * (uint64_t)VMF_HASH_LEN)

/* Remember an error to answer when the body is complete. */
static void __attribute__((format(printf, 3, 4)))
fail_later(struct http_request *req, unsigned status, const char *fmt, ...)
{
	va_list ap;

	if (req->up_status)
		return; /* the first error is the one to report */
	req->up_status = status;
	va_start(ap, fmt);
	vsnprintf(req->up_error, sizeof(req->up_error), fmt, ap);
	va_end(ap);
}

/* 507 for a full disk (the client may retry later), 500 otherwise. */
static unsigned io_status(int r)
{
	return r == -ENOSPC || r == -EDQUOT ? 507 : 500;
}

/* What the client is told went wrong, with io_status(r). */
static const char *io_what(int r)
{
	return io_status(r) == 507 ? "the server's disk is full"
				   : "server error";
}

static enum MHD_Result commit_begin(struct http_request *req)
{
	const char *id = http_header(req, VMF_HDR_COMMIT_ID);
	const char *base = http_header(req, VMF_HDR_BASE);
	const char *lease = http_header(req, VMF_HDR_LEASE);
	int fd;

	if (!id)
		return http_reply_error(req, 400, "missing %s header",
					VMF_HDR_COMMIT_ID);
	if (!commit_id_valid(id))
		return http_reply_error(req, 400,
					"invalid %s (want 16-128 of "
					"A-Z a-z 0-9 _ -)",
					VMF_HDR_COMMIT_ID);
	if (!base)
		return http_reply_error(req, 400, "missing %s header",
					VMF_HDR_BASE);
	if (parse_u64(base, &req->base) < 0)
		return http_reply_error(req, 400,
					"invalid %s (want a decimal "
					"version, 0 for a new image)",
					VMF_HDR_BASE);
	if (lease && !lease_id_valid(lease))
		return http_reply_error(req, 400,
					"invalid %s (want %d hex digits)",
					VMF_HDR_LEASE, VMF_LEASE_ID_HEX_LEN);
	snprintf(req->commit_id, sizeof(req->commit_id), "%s", id);
	snprintf(req->lease_id, sizeof(req->lease_id), "%s",
		 lease ? lease : "");
	fd = store_mktemp(req->ctx->store, "upload", &req->up_path);
	if (fd < 0) {
		log_error_errno(fd, "commit to %s: temporary file: %m",
				req->name);
		return http_reply_error(req, io_status(fd),
					"%s storing the upload", io_what(fd));
	}
	req->up_fd = fd;
	return MHD_YES;
}

enum MHD_Result http_write_begin(struct http_request *req)
{
	uint64_t max;
	int r;

	switch (req->route) {
	case ROUTE_MISSING:
		max = MISSING_MAX;
		break;
	case ROUTE_BLOCK:
		max = VMF_BLOCK_SIZE_MAX;
		break;
	case ROUTE_LEASE:
	case ROUTE_PINS:
		max = HTTP_LEASE_BODY_MAX;
		break;
	case ROUTE_PROFILE:
		max = VMF_PROFILE_BODY_MAX;
		break;
	case ROUTE_VM:
	case ROUTE_CONSOLE:
		max = HTTP_VM_BODY_MAX;
		break;
	default:
		max = COMMIT_MAX;
		break;
	}
	/* serve --max-body-size lowers every limit of the protocol. */
	if (max > req->ctx->max_body)
		max = req->ctx->max_body;
	upload_parse_init(&req->upload, req->route, max);
	r = upload_parse_length(&req->upload,
				http_header(req, "Content-Length"));
	if (r == -EINVAL)
		return http_reply_error(req, 400, "invalid Content-Length");
	if (r == -EFBIG)
		return http_reply_error(
		    req, 413, "body too large: at most %" PRIu64 " bytes here",
		    max);
	if (r < 0)
		return http_reply_error(req, 400,
					"body is not a list of %u-byte hashes",
					VMF_HASH_LEN);
	if (req->route == ROUTE_COMMIT)
		return commit_begin(req);
	return MHD_YES;
}

static void buffer_data(struct http_request *req, const uint8_t *buf,
			size_t len)
{
	size_t need = req->body_len + len, cap;
	uint8_t *grown;

	if (upload_parse_add(&req->upload, buf, len) < 0) {
		fail_later(req, 413,
			   "body too large: at most %" PRIu64 " bytes here",
			   req->upload.max);
		return;
	}
	/* Grow to the next power of two: the body size is bounded. */
	for (cap = 4096; cap < need; cap *= 2)
		;
	grown = realloc(req->body, cap);
	if (!grown) {
		fail_later(req, 503, "server out of memory");
		return;
	}
	req->body = grown;
	memcpy(req->body + req->body_len, buf, len);
	req->body_len = need;
}

static void upload_data(struct http_request *req, const uint8_t *buf,
			size_t len)
{
	int r;

	/* A body without Content-Length is bounded as it arrives. */
	r = upload_parse_add(&req->upload, buf, len);
	if (r == -EFBIG) {
		fail_later(req, 413, "body too large: at most %zu bytes here",
			   (size_t)req->upload.max);
		return;
	}
	if (r == -EBADMSG) {
		fail_later(req, 400, "manifest header does not parse");
		return;
	}
	if (r < 0) {
		fail_later(req, 400,
			   "manifest is longer than its header says "
			   "(%" PRIu64 " bytes)",
			   req->upload.expect);
		return;
	}
	r = full_pwrite(req->up_fd, buf, len, (off_t)req->up_len);
	if (r < 0) {
		log_error_errno(r, "commit to %s: writing the upload: %m",
				req->name);
		fail_later(req, io_status(r), "%s storing the upload",
			   io_what(r));
		return;
	}
	req->up_len += len;
}

void http_write_data(struct http_request *req, const uint8_t *buf, size_t len)
{
	if (req->up_status)
		return; /* already failed: drain the body */
	if (req->route == ROUTE_COMMIT)
		upload_data(req, buf, len);
	else
		buffer_data(req, buf, len);
}

static enum MHD_Result finish_missing(struct http_request *req)
{
	_cleanup_free_ uint8_t *out = NULL;
	struct MHD_Response *resp;
	size_t n = 0;

	if (upload_parse_finish(&req->upload) < 0)
		return http_reply_error(req, 400,
					"body is not a list of %u-byte hashes",
					VMF_HASH_LEN);
	out = malloc(req->body_len ? req->body_len : 1);
	if (!out)
		return http_reply_error(req, 503, "server out of memory");
	for (size_t i = 0; i < req->body_len; i += VMF_HASH_LEN) {
		const uint8_t *h = req->body + i;

		if (!store_has(req->ctx->store, h)) {
			memcpy(out + n, h, VMF_HASH_LEN);
			n += VMF_HASH_LEN;
		}
	}
	resp = MHD_create_response_from_buffer(n, steal_ptr(&out),
					       MHD_RESPMEM_MUST_FREE);
	if (resp &&
	    (MHD_add_response_header(resp, "Content-Type",
				     "application/octet-stream") != MHD_YES ||
	     MHD_add_response_header(resp, "Cache-Control", "no-store") !=
		 MHD_YES)) {
		MHD_destroy_response(resp);
		resp = NULL;
	}
	return http_queue(req, 200, resp, n);
}

static enum MHD_Result finish_block(struct http_request *req)
{
	char hex[VMF_HASH_HEX_LEN + 1];
	uint8_t got[VMF_HASH_LEN];
	bool created;
	int r;

	hash_to_hex(req->hash, VMF_HASH_LEN, hex);
	if (req->body_len == 0)
		return http_reply_error(req, 400, "empty block");
	if (hash_is_zero_buf(req->body, req->body_len))
		return http_reply_error(req, 400,
					"zero blocks are never stored "
					"(mark them in the manifest)");
	hash_sha256(req->body, req->body_len, got);
	if (memcmp(got, req->hash, VMF_HASH_LEN) != 0)
		return http_reply_error(
		    req, 400, "block does not match its hash %s", hex);
	r = store_put(req->ctx->store, req->hash, req->body, req->body_len, 0,
		      &created);
	if (r < 0) {
		log_error_errno(r, "storing block %s: %m", hex);
		return http_reply_error(req, io_status(r),
					"%s storing the block", io_what(r));
	}
	return http_reply_json(
	    req, created ? 201 : 200,
	    json_pack("{s:s, s:b}", "hash", hex, "created", created),
	    "no-store");
}

/* 409: the manifest names blocks the store lacks; list them. */
static enum MHD_Result reply_missing(struct http_request *req,
				     const struct commit_result *res)
{
	char hex[VMF_HASH_HEX_LEN + 1];
	json_t *list = json_array();

	for (size_t i = 0; list && i < res->missing_listed; i++) {
		hash_to_hex(res->missing_list + i * VMF_HASH_LEN, VMF_HASH_LEN,
			    hex);
		json_array_append_new(list, json_string(hex));
	}
	return http_reply_error_ex(
	    req, 409,
	    json_pack("{s:s, s:I, s:o*}", "reason", "missing_blocks",
		      "missing_blocks", (json_int_t)res->missing, "missing",
		      list),
	    NULL, NULL,
	    "manifest references %" PRIu64 " blocks the store lacks "
	    "(upload them first)",
	    res->missing);
}

/* 409: the lease check failed; name the holder if there is one. */
static enum MHD_Result reply_lease(struct http_request *req,
				   const struct commit_result *res)
{
	json_t *extra =
	    res->lease_live ? lease_to_json(&res->lease) : json_object();
	char msg[320];

	json_object_set_new(extra, "reason", json_string("lease"));
	if (req->lease_id[0])
		snprintf(msg, sizeof(msg), "lease broken or expired");
	else
		http_lease_describe(req->name, &res->lease, msg, sizeof(msg));
	return http_reply_error_ex(req, 409, extra, NULL, NULL, "%s", msg);
}

static enum MHD_Result finish_commit(struct http_request *req)
{
	struct commit_request cr = {
	    .name = req->name,
	    .commit_id = req->commit_id,
	    .base = req->base,
	    .check_lease = true,
	    .lease_id = req->lease_id[0] ? req->lease_id : NULL,
	    .author = req->token->label,
	    .keep_versions = req->ctx->keep_versions,
	};
	_cleanup_free_ char *path = steal_ptr(&req->up_path);
	struct commit_result res = {0};
	enum MHD_Result ret;
	int r;

	/* commit_manifest() consumes the upload whatever happens. */
	r = commit_manifest(req->ctx->versions, &cr, req->up_fd, path, &res);
	switch (r) {
	case 0:
		req->audit_version = res.version;
		if (res.replayed)
			req->audit_action = "commit.replay";
		if (!res.replayed)
			log_info("committed %s version %" PRIu64
				 " (commit %s, token %s)",
				 req->name, res.version, req->commit_id,
				 req->token->id);
		return http_reply_json(
		    req, 201,
		    json_pack("{s:I}", "version", (json_int_t)res.version),
		    "no-store");
	case -EBADMSG:
		return http_reply_error(req, 400,
					"manifest does not parse (or its size "
					"does not match its header)");
	case -ENODATA:
		ret = reply_missing(req, &res);
		commit_result_fini(&res);
		return ret;
	case -EBUSY:
		return reply_lease(req, &res);
	case -ESTALE:
		return http_reply_error_ex(
		    req, 409,
		    json_pack("{s:s, s:I}", "reason", "stale_base",
			      "current_version", (json_int_t)res.current),
		    NULL, NULL,
		    "base version %" PRIu64 " is not current (%" PRIu64 ")",
		    req->base, res.current);
	case -EEXIST:
		return http_reply_error_ex(
		    req, 409, json_pack("{s:s}", "reason", "commit_id"), NULL,
		    NULL, "commit id %s was used for another commit",
		    req->commit_id);
	default:
		log_error_errno(r, "commit to %s: %m", req->name);
		return http_reply_error(req, io_status(r), "%s committing %s",
					io_what(r), req->name);
	}
}

enum MHD_Result http_write_finish(struct http_request *req)
{
	if (req->up_status)
		return http_reply_error(req, req->up_status, "%s",
					req->up_error);
	switch (req->route) {
	case ROUTE_MISSING:
		return finish_missing(req);
	case ROUTE_BLOCK:
		return finish_block(req);
	case ROUTE_COMMIT:
		return finish_commit(req);
	case ROUTE_LEASE:
		return http_lease_acquire(req);
	case ROUTE_PINS:
		return http_pin_acquire(req);
	case ROUTE_PROFILE:
		return http_profile_put(req);
	case ROUTE_VM:
		return http_vm_start(req);
	case ROUTE_CONSOLE:
		return http_vm_input(req);
	default:
		return http_reply_error(req, 500, "no handler");
	}
}

void http_write_fini(struct http_request *req)
{
	free(req->body);
	req->body = NULL;
	closep(&req->up_fd);
	if (req->up_path) {
		(void)unlink(req->up_path); /* abandoned upload */
		free(req->up_path);
		req->up_path = NULL;
	}
}
