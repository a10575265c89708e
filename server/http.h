/* SPDX-License-Identifier: MIT */
/* The HTTPS server: libmicrohttpd glue, routing, authentication, JSON
 * errors and counters.  docs/protocol.md describes the API.
 *
 * http_start() runs libmicrohttpd's own threads (a thread per
 * connection, or a pool); the route handlers (http_read.c,
 * http_write.c) run on them, one request per thread at a time.  What
 * handlers share is struct http_ctx, read-only after start except for
 * the atomic counters.
 */
#ifndef VMFERRY_HTTP_H
#define VMFERRY_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#include "proto.h"

#include "commit.h"
#include "deadline.h"
#include "route.h"
#include "upload_parse.h"

struct audit;
struct auth_db;
struct auth_token;
struct auth_watch;
struct deadline;
struct deadline_conn;
struct http_vnc;
struct ratelimit;
struct store;

#define HTTP_MAX_HEAD_DEFAULT	 (64u * 1024)
#define HTTP_MAX_BODY_DEFAULT	 (1ull << 30)
#define HTTP_IDLE_DEFAULT	 60 /* seconds */
#define HTTP_PER_ADDRESS_DEFAULT 32

struct http_config {
	int listen_fd; /* from http_listen(); taken over by http_start() */
	int family;    /* its address family */
	const char *cert_pem; /* borrowed until http_stop() */
	const char *key_pem;
	unsigned threads;	  /* 0: a thread per connection */
	bool verbose;		  /* one log line per request */
	int64_t lease_seconds;	  /* lease duration unless the policy says */
	uint64_t keep_versions;	  /* retention after a commit (retention.h) */
	size_t max_head;	  /* per connection: request head, buffers */
	uint64_t max_body;	  /* any request body (below the protocol's) */
	unsigned request_timeout; /* deadline.h; 0: none */
	uint64_t min_rate;	  /* body bytes/s that extend it */
	unsigned idle_timeout;	  /* seconds without traffic */
	unsigned per_address;	  /* connections per client address */
	unsigned auth_fail_max;	  /* ratelimit.h; 0: no limit */
	unsigned auth_fail_window;
	struct audit *audit;   /* borrowed; may be NULL */
	struct vms *vms;       /* borrowed: the VMs this server runs */
	unsigned vnc_ticket_s; /* lifetime of a VNC ticket (vnc_ticket.h) */
};

/* Counters since start; relaxed atomics, read only for /v1/stats. */
struct http_stats {
	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t data_requests; /* GET .../data answered 200/206 */
	atomic_uint_fast64_t data_bytes;    /* body bytes of those */
	atomic_uint_fast64_t manifest_requests;
	atomic_uint_fast64_t bytes_sent; /* all response bodies */
	atomic_uint_fast64_t errors_4xx;
	atomic_uint_fast64_t errors_5xx;
};

static inline void http_count(atomic_uint_fast64_t *c, uint64_t n)
{
	/* Relaxed: statistics, ordered with nothing else. */
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Shared by every request; set before the daemon starts. */
struct http_ctx {
	struct store *store;
	struct versions *versions;
	struct auth_watch *auth;
	struct audit *audit;	     /* may be NULL */
	struct ratelimit *ratelimit; /* may be NULL: no limit */
	struct deadline *deadline;   /* may be NULL: no deadline */
	uint64_t max_body;
	struct http_stats stats;
	bool verbose;
	int64_t lease_seconds;	/* default lease duration */
	uint64_t keep_versions; /* versions kept after a commit */
	struct vms *vms;	/* VMs run here (vm.h) */
	struct http_vnc *vnc;	/* VNC relays (http_vnc.h) */
	/* libmicrohttpd messages: errors before, debug after.  Set by the
	 * main thread once MHD's threads run: atomic, relaxed (a log level
	 * choice only). */
	atomic_bool started;
};

/* One request, from its headers to its completion. */
struct http_request {
	struct http_ctx *ctx;
	struct MHD_Connection *conn;
	const char *method;
	char *path; /* as received (for the log) */
	bool head;
	bool begun;  /* begin() ran: routed and authenticated */
	bool queued; /* a response is queued */
	unsigned status;
	enum route_id route;
	struct auth_db *db;		/* reference held to the end */
	const struct auth_token *token; /* borrowed from db */
	const struct sockaddr *peer;	/* the client's, or NULL */
	char addr[DEADLINE_ADDR_LEN];	/* the client's address as text */
	struct deadline_conn *dl;	/* the connection's deadline */
	/* For the audit log (http_queue()): the action if not the
	 * route's default, the version, more fields (owned). */
	const char *audit_action;
	uint64_t audit_version;
	json_t *audit_extra;
	char name[VMF_NAME_MAX + 1]; /* NAME of the route */
	uint64_t version;	     /* N of the route */
	uint8_t hash[VMF_HASH_LEN];  /* HEX of the route */

	/* Request body, owned by http_write.c. */
	uint8_t *body; /* buffered body (missing, block) */
	size_t body_len;
	struct upload_parse upload; /* what the body may be (upload_parse.h) */
	int up_fd;		    /* streamed body (commit), or -1 */
	char *up_path;
	uint64_t up_len;    /* bytes written to up_fd */
	unsigned up_status; /* an error found while receiving */
	char up_error[160];
	char commit_id[COMMIT_ID_MAX + 1];
	uint64_t base;
	char lease_id[VMF_LEASE_ID_HEX_LEN + 1]; /* "" if none was sent */
	/* The hash of the token, once authenticate() found it (a VNC
	 * ticket stands for it). */
	uint8_t token_hash[VMF_HASH_LEN];

	/* GET .../vnc (http_vnc.c): the relay until the upgrade, and
	 * whether the connection was handed over. */
	struct relay *vnc;
	bool upgraded;
};

struct http_server;

/* A socket bound to addr and listening (before dropping privileges).
 * -errno (-EADDRINUSE, ...). */
int http_listen(const struct sockaddr *addr, socklen_t len, int *ret_fd);
/* Start serving.  The objects are borrowed and must outlive the server.
 * -EINVAL (libmicrohttpd refused the options; its reason is logged)
 * or -ENOMEM.  cfg->listen_fd is closed in every case. */
int http_start(const struct http_config *cfg, struct store *s,
	       struct versions *v, struct auth_watch *a,
	       struct http_server **ret);
/* The port actually bound. */
uint16_t http_port(const struct http_server *h);
/* Stop: closes every connection and joins every thread. */
void http_stop(struct http_server *h);

/* For the route handlers. */

/* Queue resp (destroyed here) with status; body_len counts toward
 * bytes_sent unless HEAD.  Counts errors and writes the access log. */
enum MHD_Result http_queue(struct http_request *req, unsigned status,
			   struct MHD_Response *resp, uint64_t body_len);
/* A response with body (JSON, which is stolen), Content-Type
 * application/json and Cache-Control cache_control. */
struct MHD_Response *http_json_response(json_t *body, const char *cache_control,
					size_t *ret_len);
/* Reply with body as JSON (stolen). */
enum MHD_Result http_reply_json(struct http_request *req, unsigned status,
				json_t *body, const char *cache_control);
/* Reply {"error": message, "status": status} plus the fields of extra
 * (stolen; may be NULL).  header/value: one more header (or NULL). */
enum MHD_Result http_reply_error_ex(struct http_request *req, unsigned status,
				    json_t *extra, const char *header,
				    const char *value, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
#define http_reply_error(req, status, ...) \
	http_reply_error_ex((req), (status), NULL, NULL, NULL, __VA_ARGS__)

/* One request header, or NULL. */
const char *http_header(struct http_request *req, const char *name);

#endif
