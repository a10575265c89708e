/* SPDX-License-Identifier: MIT */
/* Boot-profile route handlers.  See http_profile.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

#include "http_profile.h"
#include "profiles.h"
#include "versions.h"

/* The header of version N of the request's image, or an answer: 404
 * naming what is missing, 500 (logged) for anything else.  Returns 0,
 * or -1 once an answer is queued. */
static int version_header(struct http_request *req, struct manifest_header *ret,
			  enum MHD_Result *ret_answer)
{
	struct version_info info;
	uint64_t current;
	int r, fd;

	r = versions_current(req->ctx->versions, req->name, &current);
	if (r == -ENOENT) {
		*ret_answer =
		    http_reply_error(req, 404, "no image %s", req->name);
		return -1;
	}
	fd = r < 0 ? r
		   : versions_open_manifest(req->ctx->versions, req->name,
					    req->version, false, &info);
	if (fd == -ENOENT) {
		*ret_answer = http_reply_error(
		    req, 404, "image %s has no version %" PRIu64, req->name,
		    req->version);
		return -1;
	}
	if (fd < 0) {
		log_error_errno(fd, "%s %s: %m", req->method, req->path);
		*ret_answer = http_reply_error(
		    req, 500, "server error reading image %s", req->name);
		return -1;
	}
	close(fd);
	*ret = info.hdr;
	return 0;
}

enum MHD_Result http_profile_get(struct http_request *req)
{
	struct manifest_header hdr;
	struct profile p = {0};
	enum MHD_Result answer;
	int r;

	if (version_header(req, &hdr, &answer) < 0)
		return answer;
	r = profiles_load_nearest(req->ctx->versions, req->name, req->version,
				  &p);
	if (r == -ENOENT)
		return http_reply_error(req, 404,
					"image %s has no boot profile for "
					"version %" PRIu64 " or before",
					req->name, req->version);
	if (r < 0) {
		log_error_errno(r, "%s %s: %m", req->method, req->path);
		return http_reply_error(req, 500,
					"server error reading a profile of %s",
					req->name);
	}
	answer = http_reply_json(req, 200, profiles_to_json(&p), "no-cache");
	profiles_fini(&p);
	return answer;
}

enum MHD_Result http_profile_put(struct http_request *req)
{
	_cleanup_free_ uint64_t *blocks = NULL;
	struct manifest_header hdr;
	struct profile p = {0};
	enum MHD_Result answer;
	const char *why = NULL;
	size_t n = 0;
	int r;

	if (version_header(req, &hdr, &answer) < 0)
		return answer;
	r = profiles_parse_upload(req->body, req->body_len, req->version,
				  hdr.nblocks, &blocks, &n, &why);
	if (r == -EBADMSG)
		return http_reply_error(req, 400, "invalid profile: %s", why);
	if (r == 0)
		r = profiles_store_merge(req->ctx->versions, req->name,
					 req->version, hdr.block_size, blocks,
					 n, &p);
	if (r == -ENOENT)
		return http_reply_error(req, 404, "no image %s", req->name);
	if (r < 0) {
		log_error_errno(r, "profile of %s version %" PRIu64 ": %m",
				req->name, req->version);
		return http_reply_error(req, r == -ENOSPC ? 507 : 500,
					"server error storing the profile");
	}
	req->audit_version = req->version;
	req->audit_extra = json_pack("{s:I, s:I}", "blocks", (json_int_t)n,
				     "uploads", (json_int_t)p.uploads);
	return http_reply_json(req, 200,
			       json_pack("{s:I, s:I, s:I}", "version",
					 (json_int_t)req->version, "blocks",
					 (json_int_t)p.n, "uploads",
					 (json_int_t)p.uploads),
			       "no-store");
}
