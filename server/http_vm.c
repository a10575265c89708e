/* SPDX-License-Identifier: MIT */
/* VM routes (see http_vm.h).
 *
 * The console stream is a response of unknown length whose reader
 * blocks on the connection's thread, polling the console file: with the
 * default thread per connection that holds up nobody else (with serve
 * --threads N it holds a pool thread).  It ends when the VM has ended
 * and everything was sent, or after HTTP_VM_STREAM_IDLE_S without
 * output, well within the idle timeout: the client then asks again from
 * where it got to.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#include "auth.h"
#include "http_lease.h"
#include "http_vm.h"
#include "versions.h"
#include "vm.h"

#define HTTP_VM_STREAM_IDLE_S 20
#define HTTP_VM_POLL_NS	      (100 * 1000 * 1000)

struct stream {
	struct vm_console *c;
	uint64_t start; /* the console offset of the body's first byte */
};

static json_t *status_json(const char *name, const struct vm_status *st)
{
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "name", name, "state",
		      vm_state_name(st->state), "holder", st->holder, "since",
		      (json_int_t)st->since, "base", (json_int_t)st->base,
		      "console_size", (json_int_t)st->console_size);

	if (o && st->version)
		json_object_set_new(o, "version",
				    json_integer((json_int_t)st->version));
	if (o && st->unchanged)
		json_object_set_new(o, "unchanged", json_true());
	if (o && st->state == VM_FAILED)
		json_object_set_new(o, "error", json_string(st->error));
	return o;
}

enum MHD_Result http_vm_start(struct http_request *req)
{
	struct vm_status st;
	struct lease held;
	char holder[VMF_LEASE_HOLDER_MAX + 1], msg[320];
	int r;

	snprintf(holder, sizeof(holder), "%.100s@vmferry-server",
		 req->token->label);
	r = vms_start(req->ctx->vms, req->name, holder, req->token->label,
		      &held);
	if (r == -EBUSY) {
		http_lease_describe(req->name, &held, msg, sizeof(msg));
		return http_reply_error_ex(req, 409, lease_to_json(&held), NULL,
					   NULL, "%s", msg);
	}
	if (r == -ENOENT)
		return http_reply_error(req, 404, "no image %s", req->name);
	if (r == -ENOEXEC)
		return http_reply_error(req, 501,
					"this server runs no VMs (no QEMU; "
					"see vmferry-server serve --qemu)");
	if (r < 0) {
		log_error_errno(r, "starting a VM of %s: %m", req->name);
		return http_reply_error(req, 500, "server error starting %s",
					req->name);
	}
	if (vms_status(req->ctx->vms, req->name, &st) < 0)
		return http_reply_error(req, 500, "server error starting %s",
					req->name);
	return http_reply_json(req, 201, status_json(req->name, &st),
			       "no-store");
}

enum MHD_Result http_vm_state(struct http_request *req)
{
	struct vm_status st;
	uint64_t cur;

	if (vms_status(req->ctx->vms, req->name, &st) == 0)
		return http_reply_json(req, 200, status_json(req->name, &st),
				       "no-store");
	if (versions_current(req->ctx->versions, req->name, &cur) < 0)
		return http_reply_error(req, 404, "no image %s", req->name);
	return http_reply_json(
	    req, 200,
	    json_pack("{s:s, s:s}", "name", req->name, "state", "none"),
	    "no-store");
}

enum MHD_Result http_vm_stop(struct http_request *req)
{
	struct vm_status st;

	if (vms_stop(req->ctx->vms, req->name) < 0)
		return http_reply_error(req, 409,
					"image %s is not running on the server",
					req->name);
	log_info("image %s: VM stop asked (token %s)", req->name,
		 req->token->id);
	if (vms_status(req->ctx->vms, req->name, &st) < 0)
		return http_reply_error(req, 500, "server error");
	return http_reply_json(req, 200, status_json(req->name, &st),
			       "no-store");
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	uint64_t idle_until = now_ns() + HTTP_VM_STREAM_IDLE_S * 1000000000ull;

	for (;;) {
		ssize_t n = vm_console_read(s->c, s->start + pos, buf, max);

		if (n > 0)
			return n;
		if (n == -ENODATA)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (n < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (now_ns() > idle_until)
			return MHD_CONTENT_READER_END_OF_STREAM;
		nanosleep(&(struct timespec){0, HTTP_VM_POLL_NS}, NULL);
	}
}

static void stream_free(void *cls)
{
	struct stream *s = cls;

	vm_console_close(s->c);
	free(s);
}

enum MHD_Result http_vm_console(struct http_request *req)
{
	const char *arg = MHD_lookup_connection_value(
	    req->conn, MHD_GET_ARGUMENT_KIND, "offset");
	struct MHD_Response *resp;
	struct stream *s;
	uint64_t off = 0;
	int r;

	if (arg && parse_u64(arg, &off) < 0)
		return http_reply_error(req, 400, "invalid offset");
	s = calloc(1, sizeof(*s));
	if (!s)
		return http_reply_error(req, 503, "server out of memory");
	s->start = off;
	r = vms_console_open(req->ctx->vms, req->name, &s->c);
	if (r < 0) {
		free(s);
		if (r == -ENOENT)
			return http_reply_error(
			    req, 404, "image %s has not run on this server",
			    req->name);
		log_error_errno(r, "console of %s: %m", req->name);
		return http_reply_error(req, 500, "server error");
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
						 stream_read, s, stream_free);
	if (!resp) {
		stream_free(s);
		return MHD_NO;
	}
	if (MHD_add_response_header(resp, "Content-Type",
				    "application/octet-stream") != MHD_YES ||
	    MHD_add_response_header(resp, "Cache-Control", "no-store") !=
		MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	return http_queue(req, 200, resp, 0);
}

enum MHD_Result http_vm_input(struct http_request *req)
{
	int r = vms_input(req->ctx->vms, req->name, req->body, req->body_len);

	if (r == -ENOENT)
		return http_reply_error(req, 409,
					"image %s is not running on the server",
					req->name);
	if (r == -EAGAIN)
		return http_reply_error(req, 503,
					"the console's input is full: retry");
	if (r < 0)
		return http_reply_error(req, 500, "server error");
	return http_reply_json(
	    req, 200, json_pack("{s:I}", "sent", (json_int_t)req->body_len),
	    "no-store");
}
