/* SPDX-License-Identifier: MIT */
/* Leases, client side.  See lease.h.  Stateless. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"

#include "fetch.h"
#include "lease.h"

void lease_holder_name(char *buf, size_t len)
{
	const char *user = getenv("USER");
	struct passwd *pw = NULL;
	char host[128] = "localhost";

	if (!user || !*user) {
		pw = getpwuid(getuid());
		user = pw ? pw->pw_name : "unknown";
	}
	(void)gethostname(host, sizeof(host) - 1); /* localhost if it fails */
	snprintf(buf, len, "%s@%s", user, host);
}

/* One request on NAME's route seg (lease or pins); path (256 bytes) must
 * live until it completes, so the caller owns it. */
static int lease_request(struct fetch *f, const char *name, const char *seg,
			 const char *method, const char *body,
			 const char *header, char *reply, size_t reply_len,
			 char *path, struct fetch_req *q)
{
	memset(q, 0, sizeof(*q));
	snprintf(path, 256, VMF_PATH_IMAGES "/%s/%s", name, seg);
	q->path = path;
	q->method = method;
	q->body = body;
	q->body_len = body ? strlen(body) : 0;
	q->content_type = body ? "application/json" : NULL;
	q->extra_headers[0] = header;
	q->buf = reply;
	q->buf_len = reply_len - 1;
	q->prio = FETCH_PRIO_DEMAND;
	return fetch_run(f, q);
}

/* POST req (consumed) to NAME's route seg and read the answer's id
 * (id_key), since, expires and renewed into *ret.  A failure's message is
 * in ret_why and its HTTP status in *ret_status. */
static int post_hold(struct fetch *f, const char *name, const char *seg,
		     json_t *req, const char *prev_id, const char *id_key,
		     struct lease *ret, char *ret_why, long *ret_status)
{
	_cleanup_free_ char *body = NULL;
	char reply[4096], path[256];
	struct fetch_req q;
	json_t *o;
	const char *id;
	int r;

	*ret_status = 0;
	if (req && prev_id && *prev_id &&
	    json_object_set_new(req, id_key, json_string(prev_id)) < 0) {
		json_decref(req);
		req = NULL;
	}
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body) {
		snprintf(ret_why, 256, "out of memory");
		return -ENOMEM;
	}
	r = lease_request(f, name, seg, "POST", body, NULL, reply,
			  sizeof(reply), path, &q);
	if (r < 0) {
		snprintf(ret_why, 256, "%s", q.errmsg);
		*ret_status = q.http_status;
		return r;
	}
	reply[q.got] = '\0';
	o = json_loads(reply, 0, NULL);
	id = json_string_value(json_object_get(o, id_key));
	if (!id || strlen(id) != VMF_LEASE_ID_HEX_LEN) {
		json_decref(o);
		snprintf(ret_why, 256, "malformed answer from the server");
		return -EBADMSG;
	}
	memcpy(ret->id, id, VMF_LEASE_ID_HEX_LEN + 1);
	ret->since = json_integer_value(json_object_get(o, "since"));
	ret->expires = json_integer_value(json_object_get(o, "expires"));
	ret->renewed = json_is_true(json_object_get(o, "renewed"));
	json_decref(o);
	return 0;
}

int lease_acquire(struct fetch *f, const char *name, const char *holder,
		  const char *prev_id, uint64_t version, struct lease *ret,
		  char *ret_why)
{
	long status;
	int r;

	r = post_hold(f, name, VMF_SEG_LEASE,
		      json_pack("{s:s, s:s, s:I}", "holder", holder, "where",
				VMF_LEASE_WHERE_LOCAL, "version",
				(json_int_t)version),
		      prev_id, "lease_id", ret, ret_why, &status);
	return r < 0 && status == 409 ? -EBUSY : r;
}

int lease_release(struct fetch *f, const char *name, const char *id,
		  char *ret_why)
{
	char header[128], reply[1024], path[256];
	struct fetch_req q;
	int r;

	snprintf(header, sizeof(header), VMF_HDR_LEASE ": %s", id);
	r = lease_request(f, name, VMF_SEG_LEASE, "DELETE", NULL, header, reply,
			  sizeof(reply), path, &q);
	if (r < 0) {
		snprintf(ret_why, 256, "%s", q.errmsg);
		return q.http_status == 409 ? -EBUSY : r;
	}
	return 0;
}

int lease_pin(struct fetch *f, const char *name, const char *holder,
	      const char *prev_id, uint64_t version, struct lease *ret,
	      char *ret_why)
{
	long status;
	int r;

	r = post_hold(f, name, VMF_SEG_PINS,
		      json_pack("{s:s, s:I}", "holder", holder, "version",
				(json_int_t)version),
		      prev_id, "pin_id", ret, ret_why, &status);
	return r < 0 && status == 404 ? -ENOENT : r;
}

int lease_unpin(struct fetch *f, const char *name, const char *id,
		char *ret_why)
{
	char header[128], reply[1024], path[256];
	struct fetch_req q;
	int r;

	snprintf(header, sizeof(header), VMF_HDR_PIN ": %s", id);
	r = lease_request(f, name, VMF_SEG_PINS, "DELETE", NULL, header, reply,
			  sizeof(reply), path, &q);
	if (r < 0)
		snprintf(ret_why, 256, "%s", q.errmsg);
	return r;
}
