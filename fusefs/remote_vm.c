/* SPDX-License-Identifier: MIT */
/* VMs run by the server, client side (see remote_vm.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "fetch.h"
#include "remote_vm.h"

/* One request on NAME's vm or console route; the answer's JSON (if
 * any) parsed into *ret_json (caller decrefs; may be NULL).  The HTTP
 * status of a refusal in *ret_status, its message in ret_why. */
static int vm_request(struct fetch *f, const char *name, const char *seg,
		      const char *method, const void *body, size_t body_len,
		      json_t **ret_json, long *ret_status, char *ret_why)
{
	char path[256], reply[4096];
	struct fetch_req q = {0};
	const char *msg;
	int r;

	snprintf(path, sizeof(path), VMF_PATH_IMAGES "/%s/%s", name, seg);
	q.path = path;
	q.method = method;
	q.body = body;
	q.body_len = body_len;
	q.content_type = seg[0] == 'v' ? "application/json" : NULL;
	q.buf = reply;
	q.buf_len = sizeof(reply) - 1;
	q.prio = FETCH_PRIO_DEMAND;
	r = fetch_run(f, &q);
	*ret_status = q.http_status;
	if (r < 0) {
		/* "HTTP 409: the server's message": keep the message. */
		msg = strstr(q.errmsg, ": ");
		snprintf(ret_why, 256, "%s",
			 msg && strncmp(q.errmsg, "HTTP ", 5) == 0 ? msg + 2
								   : q.errmsg);
		return r;
	}
	reply[q.got] = '\0';
	if (ret_json)
		*ret_json = json_loads(reply, 0, NULL);
	return 0;
}

static void parse_vm(json_t *o, struct remote_vm *ret)
{
	const char *s = json_string_value(json_object_get(o, "state"));
	const char *err = json_string_value(json_object_get(o, "error"));

	memset(ret, 0, sizeof(*ret));
	snprintf(ret->state, sizeof(ret->state), "%s", s ? s : "none");
	snprintf(ret->error, sizeof(ret->error), "%s", err ? err : "");
	ret->base = (uint64_t)json_integer_value(json_object_get(o, "base"));
	ret->version =
	    (uint64_t)json_integer_value(json_object_get(o, "version"));
	ret->unchanged = json_is_true(json_object_get(o, "unchanged"));
	ret->console_size =
	    (uint64_t)json_integer_value(json_object_get(o, "console_size"));
	ret->since = json_integer_value(json_object_get(o, "since"));
}

static int refused(int r, long status)
{
	switch (status) {
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EBUSY;
	case 501:
		return -ENOEXEC;
	case 503:
		return -EAGAIN;
	default:
		return r;
	}
}

/* POST (start) or GET (state) .../vm into *ret. */
static int vm_call(struct fetch *f, const char *name, bool start,
		   struct remote_vm *ret, char *ret_why)
{
	json_t *o = NULL;
	long status;
	int r = vm_request(f, name, VMF_SEG_VM, start ? "POST" : NULL,
			   start ? "{}" : NULL, start ? 2 : 0, &o, &status,
			   ret_why);

	if (r < 0)
		return refused(r, status);
	parse_vm(o, ret);
	json_decref(o);
	return 0;
}

int remote_vm_start(struct fetch *f, const char *name, struct remote_vm *ret,
		    char *ret_why)
{
	return vm_call(f, name, true, ret, ret_why);
}

int remote_vm_state(struct fetch *f, const char *name, struct remote_vm *ret,
		    char *ret_why)
{
	return vm_call(f, name, false, ret, ret_why);
}

int remote_vm_stop(struct fetch *f, const char *name, char *ret_why)
{
	long status;
	int r = vm_request(f, name, VMF_SEG_VM, "DELETE", NULL, 0, NULL,
			   &status, ret_why);

	r = r < 0 ? refused(r, status) : 0;
	return r == -EBUSY ? -EALREADY : r;
}

int remote_vm_input(struct fetch *f, const char *name, const void *buf,
		    size_t len, char *ret_why)
{
	long status;
	int r = vm_request(f, name, VMF_SEG_CONSOLE, "POST", buf, len, NULL,
			   &status, ret_why);

	r = r < 0 ? refused(r, status) : 0;
	return r == -EBUSY ? -EALREADY : r;
}

int remote_vm_done(const struct remote_vm *vm)
{
	return strcmp(vm->state, "stopped") == 0 ||
	       strcmp(vm->state, "failed") == 0;
}
