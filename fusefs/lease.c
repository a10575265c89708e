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

/* One request on NAME's lease route; path (256 bytes) must live until
 * it completes, so the caller owns it. */
static int lease_request(struct fetch *f, const char *name, const char *method,
			 const char *body, const char *header, char *reply,
			 size_t reply_len, char *path, struct fetch_req *q)
{
	memset(q, 0, sizeof(*q));
	snprintf(path, 256, VMF_PATH_IMAGES "/%s/" VMF_SEG_LEASE, name);
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

int lease_acquire(struct fetch *f, const char *name, const char *holder,
		  const char *prev_id, uint64_t version, struct lease *ret,
		  char *ret_why)
{
	_cleanup_free_ char *body = NULL;
	char reply[4096], path[256];
	struct fetch_req q;
	json_t *req, *o;
	const char *id;
	int r;

	req = json_pack("{s:s, s:s, s:I}", "holder", holder, "where",
			VMF_LEASE_WHERE_LOCAL, "version", (json_int_t)version);
	if (req && prev_id && *prev_id &&
	    json_object_set_new(req, "lease_id", json_string(prev_id)) < 0) {
		json_decref(req);
		req = NULL;
	}
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body)
		return -ENOMEM;
	r = lease_request(f, name, "POST", body, NULL, reply, sizeof(reply),
			  path, &q);
	if (r < 0) {
		snprintf(ret_why, 256, "%s", q.errmsg);
		return q.http_status == 409 ? -EBUSY : r;
	}
	reply[q.got] = '\0';
	o = json_loads(reply, 0, NULL);
	id = json_string_value(json_object_get(o, "lease_id"));
	if (!id || strlen(id) != VMF_LEASE_ID_HEX_LEN) {
		json_decref(o);
		snprintf(ret_why, 256, "malformed lease answer");
		return -EBADMSG;
	}
	memcpy(ret->id, id, VMF_LEASE_ID_HEX_LEN + 1);
	ret->since = json_integer_value(json_object_get(o, "since"));
	ret->expires = json_integer_value(json_object_get(o, "expires"));
	ret->renewed = json_is_true(json_object_get(o, "renewed"));
	json_decref(o);
	return 0;
}

int lease_release(struct fetch *f, const char *name, const char *id,
		  char *ret_why)
{
	char header[128], reply[1024], path[256];
	struct fetch_req q;
	int r;

	snprintf(header, sizeof(header), VMF_HDR_LEASE ": %s", id);
	r = lease_request(f, name, "DELETE", NULL, header, reply, sizeof(reply),
			  path, &q);
	if (r < 0) {
		snprintf(ret_why, 256, "%s", q.errmsg);
		return q.http_status == 409 ? -EBUSY : r;
	}
	return 0;
}
