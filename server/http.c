/* SPDX-License-Identifier: MIT */
/* libmicrohttpd glue: daemon, routing, authentication, error bodies.
 *
 * Owns the MHD daemon and struct http_ctx.  The order of checks on a
 * request is fixed: token (401), route (404), method (405), the route's
 * parameters (400), grant (403); the handler then touches the disk.  No
 * name reaches the file system before image_name_valid() passed.
 *
 * Threads: libmicrohttpd's.  Each request is handled by one thread at a
 * time; the shared state is the auth watch (its own lock) and the
 * relaxed counters in ctx->stats.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "hash.h"
#include "log.h"
#include "util.h"

#include "audit.h"
#include "auth.h"
#include "deadline.h"
#include "http.h"
#include "http_lease.h"
#include "http_profile.h"
#include "http_read.h"
#include "http_ui.h"
#include "http_vm.h"
#include "http_vnc.h"
#include "http_write.h"
#include "ratelimit.h"
#include "route.h"

#define HTTP_CONNECTION_MAX 1024
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct http_server {
	struct MHD_Daemon *daemon;
	uint16_t port;
	struct http_ctx ctx;
};

const char *http_header(struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* The audit action of a request on a write route (the route's default
 * unless its handler named one), or NULL for a request not audited. */
static const char *audit_action(const struct http_request *req, unsigned status)
{
	bool del = strcmp(req->method, MHD_HTTP_METHOD_DELETE) == 0;

	if (!req->token || status == 405)
		return NULL; /* refused before it was anything */
	if (req->audit_action)
		return req->audit_action;
	switch (req->route) {
	case ROUTE_COMMIT:
		return "commit";
	case ROUTE_BLOCK:
		return "block.put";
	case ROUTE_LEASE:
		return del ? "lease.release" : "lease.acquire";
	case ROUTE_PINS:
		return del ? "pin.release" : "pin.acquire";
	case ROUTE_PROFILE:
		return strcmp(req->method, MHD_HTTP_METHOD_PUT) == 0
			   ? "profile.put"
			   : NULL;
	case ROUTE_VM:
		if (strcmp(req->method, MHD_HTTP_METHOD_POST) == 0)
			return "vm.start";
		return del ? "vm.stop" : NULL;
	case ROUTE_VNC:
		return "vm.vnc";
	case ROUTE_VNC_TICKET:
		return "vm.vnc_ticket";
	default:
		return NULL;
	}
}

/* Every write, lease and pin request goes to the audit log, refused
 * ones too. */
static void audit_request(struct http_request *req, unsigned status)
{
	const char *action = audit_action(req, status);
	char hex[VMF_HASH_HEX_LEN + 1];
	json_t *extra = steal_ptr(&req->audit_extra);

	if (!action) {
		json_decref(extra);
		return;
	}
	if (req->route == ROUTE_BLOCK && status < 400) {
		hash_to_hex(req->hash, VMF_HASH_LEN, hex);
		if (!extra)
			extra = json_object();
		json_object_set_new(extra, "hash", json_string(hex));
	}
	(void)audit_log(req->ctx->audit,
			&(struct audit_entry){
			    .action = action,
			    .token = req->token->id,
			    .addr = req->addr,
			    .image = req->name[0] ? req->name : NULL,
			    .version = req->audit_version,
			    .status = status,
			    .extra = extra,
			}); /* a failure is logged there */
}

/* serve --verbose: one line per request, with its Range if it has one
 * (which blocks a client fetched, in what order: tests and bench). */
static void log_access(struct http_request *req, unsigned status)
{
	const char *range = http_header(req, "Range");
	size_t n = range ? strcspn(range, "\r\n") : 0;

	if (n > 64)
		n = 64; /* a line in the log, not the whole header */
	log_info("%s %s %u%s%.*s", req->method, req->path, status,
		 range ? " " : "", (int)n, range ? range : "");
}

enum MHD_Result http_queue(struct http_request *req, unsigned status,
			   struct MHD_Response *resp, uint64_t body_len)
{
	struct http_stats *st = &req->ctx->stats;
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO; /* out of memory: MHD drops the connection */
	ret = MHD_queue_response(req->conn, status, resp);
	MHD_destroy_response(resp);
	req->queued = true;
	req->status = status;
	if (status >= 500)
		http_count(&st->errors_5xx, 1);
	else if (status >= 400)
		http_count(&st->errors_4xx, 1);
	if (!req->head)
		http_count(&st->bytes_sent, body_len);
	if (req->ctx->verbose)
		log_access(req, status);
	audit_request(req, status);
	return ret;
}

struct MHD_Response *http_json_response(json_t *body, const char *cache_control,
					size_t *ret_len)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct MHD_Response *resp;
	size_t len;

	json_decref(body);
	if (!text)
		return NULL;
	len = strlen(text);
	text[len] = '\n'; /* overwrite the NUL: the body needs none */
	resp = MHD_create_response_from_buffer(len + 1, text,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return NULL;
	}
	if (MHD_add_response_header(resp, "Content-Type", "application/json") !=
		MHD_YES ||
	    MHD_add_response_header(resp, "Cache-Control", cache_control) !=
		MHD_YES) {
		MHD_destroy_response(resp);
		return NULL;
	}
	*ret_len = len + 1;
	return resp;
}

enum MHD_Result http_reply_json(struct http_request *req, unsigned status,
				json_t *body, const char *cache_control)
{
	size_t len = 0;
	struct MHD_Response *resp =
	    http_json_response(body, cache_control, &len);

	return http_queue(req, status, resp, len);
}

enum MHD_Result http_reply_error_ex(struct http_request *req, unsigned status,
				    json_t *extra, const char *header,
				    const char *value, const char *fmt, ...)
{
	struct MHD_Response *resp;
	char msg[256];
	json_t *body;
	size_t len = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	body = json_pack("{s:s, s:i}", "error", msg, "status", (int)status);
	if (body && extra)
		json_object_update(body, extra);
	json_decref(extra);
	resp = http_json_response(body, "no-store", &len);
	if (resp && header &&
	    MHD_add_response_header(resp, header, value) != MHD_YES) {
		MHD_destroy_response(resp);
		resp = NULL;
	}
	return http_queue(req, status, resp, len);
}

/* One more failed authentication from the client's address. */
static void auth_failed(struct http_request *req)
{
	struct http_ctx *ctx = req->ctx;

	if (!ratelimit_fail(ctx->ratelimit, req->peer))
		return;
	log_warn("%s: too many failed authentications; refused for a while",
		 req->addr);
	(void)audit_log(ctx->audit, &(struct audit_entry){
					.action = "auth.blocked",
					.addr = req->addr,
					.status = 429,
				    }); /* a failure is logged there */
}

/* A VNC ticket instead of a token (vnc_ticket.h): only for the
 * WebSocket, GET .../vnc?ticket=HEX.  It stands for the token that
 * asked for it, looked up again now (a revoked token's ticket fails).
 * 0 with req->token set, or -EACCES with 401 queued. */
static int authenticate_ticket(struct http_request *req, const char *ticket)
{
	struct route_match m;
	uint8_t hash[VMF_HASH_LEN];
	const char *why = "invalid, expired or used ticket";

	if (route_parse(req->method, req->path, &m) != 0 ||
	    m.route != ROUTE_VNC) {
		why = "a ticket is only for GET " VMF_PATH_IMAGES
		      "/NAME/vnc: missing bearer token";
	} else if (http_vnc_ticket_take(req->ctx->vnc, m.name, ticket, hash) ==
		   0) {
		req->db = auth_watch_get(req->ctx->auth);
		req->token = auth_db_find(req->db, hash);
		OPENSSL_cleanse(hash, sizeof(hash));
		if (req->token)
			return 0;
		why = "the ticket's token was revoked";
	}
	auth_failed(req);
	http_reply_error_ex(req, 401, NULL, "WWW-Authenticate",
			    "Bearer realm=\"vmferry\"", "%s", why);
	return -EACCES;
}

/* 401 unless the request carries a known token; 429 for an address
 * that failed too often, before its token is even looked at. */
static int authenticate(struct http_request *req)
{
	const char *value = http_header(req, "Authorization");
	const char *ticket = MHD_lookup_connection_value(
	    req->conn, MHD_GET_ARGUMENT_KIND, "ticket");
	unsigned wait = ratelimit_check(req->ctx->ratelimit, req->peer);
	const char *tok;
	uint8_t hash[VMF_HASH_LEN];
	const char *why;
	char secs[16];

	if (wait) {
		snprintf(secs, sizeof(secs), "%u", wait);
		http_reply_error_ex(req, 429, NULL, "Retry-After", secs,
				    "too many failed authentications from "
				    "%s; try again in %u s",
				    req->addr, wait);
		return -EACCES;
	}
	if (!value && ticket)
		return authenticate_ticket(req, ticket);
	if (!value)
		why = "missing bearer token";
	else if (auth_parse_bearer(value, &tok) < 0)
		why = "malformed Authorization header (want: Bearer TOKEN)";
	else {
		auth_token_hash(tok, hash);
		req->db = auth_watch_get(req->ctx->auth);
		req->token = auth_db_find(req->db, hash);
		if (req->token) {
			memcpy(req->token_hash, hash, sizeof(hash));
			return 0;
		}
		why = "invalid or revoked token";
	}
	/* A request without any credentials is no guess: not counted. */
	if (value)
		auth_failed(req);
	http_reply_error_ex(req, 401, NULL, "WWW-Authenticate",
			    "Bearer realm=\"vmferry\"", "%s", why);
	return -EACCES;
}

/* 403 unless the token's grants allow the route. */
static int authorize(struct http_request *req)
{
	const struct auth_token *t = req->token;
	bool ok;

	switch (req->route) {
	case ROUTE_IMAGES:
		ok = true; /* the list is filtered */
		break;
	case ROUTE_IMAGE:
	case ROUTE_HISTORY:
	case ROUTE_VERSION:
	case ROUTE_MANIFEST:
	case ROUTE_DATA:
	case ROUTE_PINS:
	case ROUTE_ACCESS:
	case ROUTE_PROFILE: /* a hint: it can order fetches, not change data */
		ok = auth_can_read(t, req->name);
		break;
	case ROUTE_COMMIT:
	case ROUTE_LEASE:
		ok = auth_can_write(t, req->name);
		break;
	case ROUTE_MISSING:
	case ROUTE_BLOCK:
		ok = auth_can_write_any(t);
		break;
	case ROUTE_VM:
	case ROUTE_CONSOLE:
	case ROUTE_VNC:
	case ROUTE_VNC_TICKET:
		ok = auth_can_run(t, req->name);
		break;
	default:
		ok = t->admin;
		break;
	}
	if (ok)
		return 0;
	if (req->route == ROUTE_STATS)
		http_reply_error(req, 403, "token %s is not an admin token",
				 t->id);
	else if (req->route == ROUTE_MISSING || req->route == ROUTE_BLOCK)
		http_reply_error(req, 403, "token %s may not write", t->id);
	else
		http_reply_error(
		    req, 403, "token %s may not %s image %s", t->id,
		    req->route == ROUTE_COMMIT || req->route == ROUTE_LEASE
			? "write"
		    : req->route == ROUTE_VM || req->route == ROUTE_CONSOLE ||
			    req->route == ROUTE_VNC ||
			    req->route == ROUTE_VNC_TICKET
			? "run"
			: "read",
		    req->name);
	return -EPERM;
}

/* Does the request carry a body? */
static bool has_body(struct MHD_Connection *conn)
{
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					   "Content-Length") ||
	       MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					   "Transfer-Encoding");
}

/* The first call for a request: its headers are in. */
static enum MHD_Result begin(struct http_request *req, const char *url)
{
	struct route_match m;
	int status;

	/* The page's files hold no data: no token for them. */
	if (http_ui_path(url))
		return http_ui_serve(req, url);
	if (authenticate(req) < 0)
		return req->queued ? MHD_YES : MHD_NO;
	status = route_parse(req->method, url, &m);
	if (status == 405)
		return http_reply_error_ex(
		    req, 405, NULL, "Allow", route_methods(m.route),
		    "method %s not allowed here", req->method);
	if (status != 0)
		return http_reply_error(req, (unsigned)status, "%s", m.error);
	req->route = m.route;
	memcpy(req->name, m.name, sizeof(req->name));
	req->version = m.version;
	memcpy(req->hash, m.hash, sizeof(req->hash));
	if (authorize(req) < 0)
		return req->queued ? MHD_YES : MHD_NO;
	switch (req->route) {
	case ROUTE_IMAGES:
		return http_read_images(req);
	case ROUTE_IMAGE:
		return http_read_image(req);
	case ROUTE_VERSION:
		return http_read_version_meta(req);
	case ROUTE_MANIFEST:
	case ROUTE_DATA:
		return http_read_version(req);
	case ROUTE_STATS:
		return http_read_stats(req);
	case ROUTE_ACCESS:
		return http_read_access(req);
	case ROUTE_HISTORY:
		return http_read_history(req);
	case ROUTE_LEASE:
		if (strcmp(req->method, MHD_HTTP_METHOD_DELETE) == 0)
			return http_lease_release(req);
		return http_write_begin(req);
	case ROUTE_PINS:
		if (strcmp(req->method, MHD_HTTP_METHOD_DELETE) == 0)
			return http_pin_release(req);
		return http_write_begin(req);
	case ROUTE_PROFILE:
		if (strcmp(req->method, MHD_HTTP_METHOD_PUT) != 0)
			return http_profile_get(req);
		return http_write_begin(req);
	case ROUTE_VM:
		if (strcmp(req->method, MHD_HTTP_METHOD_DELETE) == 0)
			return http_vm_stop(req);
		if (strcmp(req->method, MHD_HTTP_METHOD_POST) != 0)
			return http_vm_state(req);
		if (!has_body(req->conn))
			return http_vm_start(req);
		return http_write_begin(req);
	case ROUTE_CONSOLE:
		if (strcmp(req->method, MHD_HTTP_METHOD_GET) == 0)
			return http_vm_console(req);
		return http_write_begin(req);
	case ROUTE_VNC:
		return http_vnc_open(req);
	case ROUTE_VNC_TICKET:
		return http_vnc_ticket(req);
	default:
		return http_write_begin(req);
	}
}

/* The client's address of conn (NULL if unknown), and as text. */
static const struct sockaddr *peer_address(struct MHD_Connection *conn,
					   char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	sa = ci ? ci->client_addr : NULL;
	if (!sa ||
	    getnameinfo(sa,
			sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in),
			buf, len, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(buf, len, "?");
	return sa;
}

/* The client's address (req->peer, req->addr) and the connection's
 * deadline (req->dl). */
static void request_conn_info(struct http_request *req)
{
	const union MHD_ConnectionInfo *ci;

	req->peer = peer_address(req->conn, req->addr, sizeof(req->addr));
	ci = MHD_get_connection_info(req->conn,
				     MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	req->dl = ci ? ci->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http_ctx *ctx = cls;
	struct http_request *req = *con_cls;

	(void)version;
	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		req->ctx = ctx;
		req->conn = conn;
		req->method = method;
		req->head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
		req->up_fd = -1;
		req->path = strdup(url);
		*con_cls = req;
		http_count(&ctx->stats.requests, 1);
		request_conn_info(req);
		if (!req->path)
			return MHD_NO;
		/* A response queued now, before the body, makes
		 * libmicrohttpd close the connection afterwards.  That is
		 * right for refusing an upload early (401 before a 4 MiB
		 * body), wrong for a GET: answer those on the next call. */
		if (!has_body(conn)) {
			deadline_conn_received(req->dl);
			return MHD_YES;
		}
		req->begun = true;
		return begin(req, url);
	}
	if (req->queued) {
		/* Answered already (an error before the body): drop it. */
		deadline_conn_body(req->dl, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!req->begun) {
		req->begun = true;
		return begin(req, url);
	}
	if (*upload_data_size > 0) {
		deadline_conn_body(req->dl, *upload_data_size);
		http_write_data(req, (const uint8_t *)upload_data,
				*upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	deadline_conn_received(req->dl);
	return http_write_finish(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_request *req = *con_cls;

	(void)cls;
	(void)conn;
	if (!req)
		return;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_debug(LOG_CAT_HTTP, "%s %s: ended early (code %d)",
			  req->method, req->path, (int)toe);
	/* The next request on this connection starts now; an upgraded
	 * connection has none (the WebSocket is not HTTP any more). */
	if (!req->upgraded)
		deadline_conn_next(req->dl);
	http_vnc_request_done(req);
	http_write_fini(req);
	json_decref(req->audit_extra);
	auth_db_unref(req->db);
	free(req->path);
	free(req);
	*con_cls = NULL;
}

/* Each connection is watched for its requests' deadlines. */
static void on_connection(void *cls, struct MHD_Connection *conn,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_ctx *ctx = cls;
	const union MHD_ConnectionInfo *ci;
	char addr[DEADLINE_ADDR_LEN];

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		if (!ctx->deadline)
			return;
		(void)peer_address(conn, addr, sizeof(addr)); /* "?" if none */
		ci = MHD_get_connection_info(conn,
					     MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = deadline_conn_begin(
		    ctx->deadline, ci ? ci->connect_fd : -1, addr);
		return;
	}
	/* Called before libmicrohttpd closes the socket (deadline.h). */
	deadline_conn_end(*socket_context);
	*socket_context = NULL;
}

/* Keep the URL as sent: route parameters are decoded one segment at a
 * time, so "a%2Fb" stays one (invalid) name instead of two segments. */
static size_t no_unescape(void *cls, struct MHD_Connection *conn, char *uri)
{
	(void)cls;
	(void)conn;
	return strlen(uri);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	struct http_ctx *ctx = cls;
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	if (!atomic_load_explicit(&ctx->started, memory_order_relaxed))
		log_error("libmicrohttpd: %s", line);
	else
		log_debug(LOG_CAT_HTTP, "libmicrohttpd: %s", line);
}

int http_listen(const struct sockaddr *addr, socklen_t len, int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	int one = 1;

	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return -errno;
	/* "[::1]:PORT" means IPv6 only, as libmicrohttpd would bind it. */
	if (addr->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		return -errno;
	if (bind(fd, addr, len) < 0 || listen(fd, SOMAXCONN) < 0)
		return -errno;
	*ret_fd = steal_fd(&fd);
	return 0;
}

/* The port fd is bound to. */
static uint16_t bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void server_free(struct http_server *h)
{
	deadline_stop(h->ctx.deadline);
	ratelimit_free(h->ctx.ratelimit);
	http_vnc_free(h->ctx.vnc);
	free(h);
}

int http_start(const struct http_config *cfg, struct store *s,
	       struct versions *v, struct auth_watch *a,
	       struct http_server **ret)
{
	struct http_server *h = calloc(1, sizeof(*h));
	unsigned flags = MHD_USE_TLS | MHD_USE_AUTO_INTERNAL_THREAD |
			 MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_UPGRADE;
	int r;

	if (!h) {
		(void)close(cfg->listen_fd); /* taken over: never served */
		return -ENOMEM;
	}
	h->ctx.store = s;
	h->ctx.versions = v;
	h->ctx.auth = a;
	h->ctx.audit = cfg->audit;
	h->ctx.max_body = cfg->max_body;
	h->ctx.verbose = cfg->verbose;
	h->ctx.lease_seconds = cfg->lease_seconds;
	h->ctx.keep_versions = cfg->keep_versions;
	h->ctx.vms = cfg->vms;
	h->port = bound_port(cfg->listen_fd);
	r = ratelimit_new(cfg->auth_fail_max, cfg->auth_fail_window,
			  &h->ctx.ratelimit);
	if (r == 0)
		r = deadline_start(cfg->request_timeout, cfg->min_rate,
				   &h->ctx.deadline);
	if (r == 0)
		r = http_vnc_new(cfg->vnc_ticket_s, &h->ctx.vnc);
	if (r < 0) {
		(void)close(cfg->listen_fd); /* taken over: never served */
		server_free(h);
		return r;
	}
	if (cfg->threads == 0)
		flags |= MHD_USE_THREAD_PER_CONNECTION;
	if (cfg->family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_OptionItem opts[] = {
	    {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, &h->ctx},
	    {MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd, NULL},
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cfg->cert_pem},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)cfg->key_pem},
	    {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HTTP_TLS_PRIORITIES},
	    {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)cfg->max_head, NULL},
	    {MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout, NULL},
	    {MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTION_MAX, NULL},
	    {MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->per_address, NULL},
	    {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL},
	    {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, &h->ctx},
	    {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)no_unescape, NULL},
	    {cfg->threads ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
	     cfg->threads, NULL},
	    {MHD_OPTION_END, 0, NULL},
	};
	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &h->ctx,
				     MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!h->daemon) {
		(void)close(cfg->listen_fd); /* MHD did not take it */
		server_free(h);
		return -EINVAL;
	}
	atomic_store_explicit(&h->ctx.started, true, memory_order_relaxed);
	*ret = h;
	return 0;
}

uint16_t http_port(const struct http_server *h)
{
	return h->port;
}

void http_stop(struct http_server *h)
{
	if (!h)
		return;
	/* libmicrohttpd waits for upgraded connections: end them first. */
	http_vnc_stop(h->ctx.vnc);
	MHD_stop_daemon(h->daemon);
	server_free(h);
}
