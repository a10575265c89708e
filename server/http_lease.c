/* SPDX-License-Identifier: MIT */
/* Lease and pin routes.
 *
 * A grant's duration is the image policy's "lease_seconds" if set,
 * else the server's (serve --lease-seconds, 4 hours by default).  The
 * lease id is the holder's secret: it is answered only to the request
 * that got the lease, and never appears in metadata or logs.  State is
 * in leases.c; nothing here is shared between requests.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

#include "auth.h"
#include "http_lease.h"
#include "pins.h"
#include "versions.h"

/* At most a year: a longer lease is surely a typo. */
#define LEASE_SECONDS_MAX (366 * 24 * 3600)

void http_lease_describe(const char *name, const struct lease *l, char *buf,
			 size_t len)
{
	char since[32], until[32];

	lease_format_time(l->since, since, sizeof(since));
	lease_format_time(l->expires, until, sizeof(until));
	snprintf(buf, len, "image %s is leased to %s (%s) since %s until %s",
		 name, l->holder, l->where, since, until);
}

json_t *http_lease_public(struct http_request *req)
{
	return http_lease_public_of(req, req->name);
}

json_t *http_lease_public_of(struct http_request *req, const char *name)
{
	struct lease l;
	int r;

	r = lease_read(req->ctx->versions, name, &l);
	if (r < 0 && r != -ENOENT)
		log_warn_errno(r, "image %s: reading its lease: %m", name);
	if (r < 0 || !lease_live(&l, now_wall()))
		return json_null();
	return lease_to_json(&l);
}

/* 409 naming the holder of the live lease l. */
static enum MHD_Result reply_held(struct http_request *req,
				  const struct lease *l)
{
	char msg[320];

	http_lease_describe(req->name, l, msg, sizeof(msg));
	return http_reply_error_ex(req, 409, lease_to_json(l), NULL, NULL, "%s",
				   msg);
}

static enum MHD_Result reply_failed(struct http_request *req, int r,
				    const char *what)
{
	if (r == -ENOENT)
		return http_reply_error(req, 404, "no image %s", req->name);
	log_error_errno(r, "%s %s: %m", what, req->name);
	return http_reply_error(req, 500, "server error: %s %s", what,
				req->name);
}

static enum MHD_Result reply_bad_policy(struct http_request *req)
{
	log_error("image %s: bad policy.json or lease_seconds", req->name);
	return http_reply_error(req, 500, "image %s has an unreadable policy",
				req->name);
}

/* The grant's duration for this image; -EBADMSG for a bad policy. */
static int lease_seconds(struct http_request *req, int64_t *ret)
{
	json_t *policy = NULL, *j;
	json_int_t n;
	int r;

	r = versions_policy(req->ctx->versions, req->name, &policy);
	if (r < 0)
		return r;
	*ret = req->ctx->lease_seconds;
	j = json_object_get(policy, "lease_seconds");
	if (j) {
		n = json_is_integer(j) ? json_integer_value(j) : 0;
		if (n <= 0 || n > LEASE_SECONDS_MAX)
			r = -EBADMSG;
		else
			*ret = n;
	}
	json_decref(policy);
	return r;
}

enum MHD_Result http_lease_acquire(struct http_request *req)
{
	struct lease_request rq = {0};
	json_int_t version = 0;
	struct lease l;
	json_t *body, *ans;
	bool renewed;
	int r;

	body = json_loadb((const char *)req->body, req->body_len, 0, NULL);
	if (!json_is_object(body) ||
	    json_unpack(body, "{s:s, s:s, s?s, s?I}", "holder", &rq.holder,
			"where", &rq.where, "lease_id", &rq.id, "version",
			&version) < 0) {
		json_decref(body);
		return http_reply_error(req, 400,
					"want a JSON object {\"holder\": TEXT, "
					"\"where\": \"local\"|\"remote\"} and "
					"an optional \"lease_id\" and "
					"\"version\"");
	}
	if (!lease_holder_valid(rq.holder) || !lease_where_valid(rq.where) ||
	    (rq.id && !lease_id_valid(rq.id)) || version < 0) {
		json_decref(body);
		return http_reply_error(req, 400,
					"invalid holder (1-%d bytes of text), "
					"where (local or remote), lease_id "
					"or version",
					VMF_LEASE_HOLDER_MAX);
	}
	rq.version = (uint64_t)version;
	r = lease_seconds(req, &rq.seconds);
	if (r == 0)
		r = lease_acquire(req->ctx->versions, req->name, &rq, &l,
				  &renewed);
	json_decref(body); /* rq borrowed from it */
	if (r == -EBUSY)
		return reply_held(req, &l);
	if (r == -EBADMSG)
		return reply_bad_policy(req);
	if (r < 0)
		return reply_failed(req, r, "taking the lease of");
	if (!renewed)
		log_info("image %s leased to %s (%s), token %s", req->name,
			 l.holder, l.where, req->token->id);
	req->audit_action = renewed ? "lease.renew" : "lease.grant";
	req->audit_extra =
	    json_pack("{s:s, s:s, s:I}", "holder", l.holder, "where", l.where,
		      "expires", (json_int_t)l.expires);
	ans = lease_to_json(&l);
	if (ans) {
		json_object_set_new(ans, "lease_id", json_string(l.id));
		json_object_set_new(ans, "renewed", json_boolean(renewed));
	}
	return http_reply_json(req, 200, ans, "no-store");
}

enum MHD_Result http_lease_release(struct http_request *req)
{
	const char *id = http_header(req, VMF_HDR_LEASE);
	struct lease l;
	bool released;
	int r;

	if (!id || !lease_id_valid(id))
		return http_reply_error(
		    req, 400, "missing or invalid %s header", VMF_HDR_LEASE);
	r = lease_release(req->ctx->versions, req->name, id, &l, &released);
	if (r == -EBUSY)
		return reply_held(req, &l);
	if (r < 0)
		return reply_failed(req, r, "releasing the lease of");
	if (released)
		log_info("image %s: lease released, token %s", req->name,
			 req->token->id);
	req->audit_extra = json_pack("{s:b}", "released", released);
	return http_reply_json(
	    req, 200, json_pack("{s:b}", "released", released), "no-store");
}

enum MHD_Result http_pin_acquire(struct http_request *req)
{
	struct pin_request rq = {0};
	json_int_t version = 0;
	struct pin p;
	json_t *body;
	bool renewed;
	int r;

	body = json_loadb((const char *)req->body, req->body_len, 0, NULL);
	if (!json_is_object(body) ||
	    json_unpack(body, "{s:s, s:I, s?s}", "holder", &rq.holder,
			"version", &version, "pin_id", &rq.id) < 0 ||
	    !lease_holder_valid(rq.holder) || version < 1 ||
	    (rq.id && !lease_id_valid(rq.id))) {
		json_decref(body);
		return http_reply_error(req, 400,
					"want a JSON object {\"holder\": TEXT "
					"(1-%d bytes), \"version\": N} and an "
					"optional \"pin_id\"",
					VMF_LEASE_HOLDER_MAX);
	}
	rq.version = (uint64_t)version;
	r = lease_seconds(req, &rq.seconds);
	if (r == 0)
		r = pin_acquire(req->ctx->versions, req->name, &rq, &p,
				&renewed);
	json_decref(body); /* rq borrowed from it */
	if (r == -ESRCH)
		return http_reply_error(req, 404,
					"image %s has no version %" PRIu64
					" (dropped by retention?)",
					req->name, rq.version);
	if (r == -ENOSPC)
		return http_reply_error(req, 503,
					"image %s has %d pins already; try "
					"again later",
					req->name, PINS_MAX);
	if (r == -EBADMSG)
		return reply_bad_policy(req);
	if (r < 0)
		return reply_failed(req, r, "pinning a version of");
	if (!renewed)
		log_info("image %s: version %" PRIu64 " pinned by %s, token %s",
			 req->name, p.version, p.holder, req->token->id);
	req->audit_action = renewed ? "pin.renew" : "pin.grant";
	req->audit_version = p.version;
	req->audit_extra = json_pack("{s:s, s:I}", "holder", p.holder,
				     "expires", (json_int_t)p.expires);
	return http_reply_json(
	    req, 200,
	    json_pack("{s:s, s:s, s:I, s:I, s:I, s:b}", "pin_id", p.id,
		      "holder", p.holder, "version", (json_int_t)p.version,
		      "since", (json_int_t)p.since, "expires",
		      (json_int_t)p.expires, "renewed", renewed),
	    "no-store");
}

enum MHD_Result http_pin_release(struct http_request *req)
{
	const char *id = http_header(req, VMF_HDR_PIN);
	bool released;
	int r;

	if (!id || !lease_id_valid(id))
		return http_reply_error(req, 400,
					"missing or invalid %s header (want "
					"%d hex digits)",
					VMF_HDR_PIN, VMF_LEASE_ID_HEX_LEN);
	r = pin_release(req->ctx->versions, req->name, id, &released);
	if (r < 0)
		return reply_failed(req, r, "releasing a pin of");
	req->audit_extra = json_pack("{s:b}", "released", released);
	return http_reply_json(
	    req, 200, json_pack("{s:b}", "released", released), "no-store");
}
