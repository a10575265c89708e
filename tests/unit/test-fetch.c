/* SPDX-License-Identifier: MIT */
/* Unit tests for fusefs/fetch.c.
 *
 * The neighbour, a vmferry server, is mocked by an in-process
 * libmicrohttpd server on 127.0.0.1 (plain HTTP, so engines here are
 * made with allow_plain; nothing else may use plain http).  It serves
 * SRV_SIZE deterministic bytes at /data with Range support, and paths
 * that misbehave in one way each.  /gate/N answers like /data once the
 * test opens gate N, which makes ordering tests deterministic.
 *
 * MHD runs a thread per connection so a handler may block at a gate.
 * test_tls() starts a second, HTTPS, daemon with a certificate made here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "proto.h"
#include "util.h"

#include "bgshare.h"
#include "fetch.h"
#include "tap.h"

#define SRV_SIZE  (1u << 20)
#define SRV_GATES 8

static uint8_t srv_data[SRV_SIZE];
static struct MHD_Daemon *srv;
static char srv_url[64];

/* Gates: handlers of /gate/N wait until gate_open[N]. */
static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t srv_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open[SRV_GATES];   /* protected by srv_lock */
static int gate_waiting[SRV_GATES]; /* protected by srv_lock */
static bool srv_stopping;	    /* protected by srv_lock */

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static struct timespec deadline(double secs)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)secs;
	ts.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* Block a handler at gate g; true if it was opened. */
static bool gate_pass(unsigned g, double max_secs)
{
	struct timespec until = deadline(max_secs);
	bool open;

	pthread_mutex_lock(&srv_lock);
	gate_waiting[g]++;
	pthread_cond_broadcast(&srv_cond);
	while (!gate_open[g] && !srv_stopping)
		if (pthread_cond_timedwait(&srv_cond, &srv_lock, &until) ==
		    ETIMEDOUT)
			break;
	open = gate_open[g];
	gate_waiting[g]--;
	pthread_cond_broadcast(&srv_cond);
	pthread_mutex_unlock(&srv_lock);
	return open;
}

static void gate_set(unsigned g, bool open)
{
	pthread_mutex_lock(&srv_lock);
	gate_open[g] = open;
	pthread_cond_broadcast(&srv_cond);
	pthread_mutex_unlock(&srv_lock);
}

/* Wait until n handlers are blocked at gate g (so those requests are
 * surely in flight). */
/* Requests waiting at gate g now. */
static int gate_count(unsigned g)
{
	int n;

	pthread_mutex_lock(&srv_lock);
	n = gate_waiting[g];
	pthread_mutex_unlock(&srv_lock);
	return n;
}

static bool gate_wait_for(unsigned g, int n)
{
	struct timespec until = deadline(10);
	bool ok;

	pthread_mutex_lock(&srv_lock);
	while (gate_waiting[g] < n)
		if (pthread_cond_timedwait(&srv_cond, &srv_lock, &until) ==
		    ETIMEDOUT)
			break;
	ok = gate_waiting[g] >= n;
	pthread_mutex_unlock(&srv_lock);
	return ok;
}

/* "bytes=A-B" or "bytes=A-"; false if absent or anything else. */
static bool parse_range(const char *h, uint64_t *first, uint64_t *last)
{
	char *end;

	if (!h || strncmp(h, "bytes=", 6) != 0)
		return false;
	*first = strtoull(h + 6, &end, 10);
	if (*end != '-')
		return false;
	if (end[1] == '\0') {
		*last = UINT64_MAX;
		return true;
	}
	*last = strtoull(end + 1, &end, 10);
	return *end == '\0' && *last >= *first;
}

static enum MHD_Result reply(struct MHD_Connection *con, unsigned status,
			     struct MHD_Response *resp)
{
	enum MHD_Result ret = MHD_queue_response(con, status, resp);

	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *con, unsigned status,
				  const char *text, const char *type)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);

	MHD_add_response_header(resp, "Content-Type", type);
	return reply(con, status, resp);
}

/* A 206 whose Content-Range says [first, last] and whose body is
 * body_len bytes of srv_data from body_off. */
static enum MHD_Result reply_206(struct MHD_Connection *con, uint64_t first,
				 uint64_t last, uint64_t body_off,
				 uint64_t body_len)
{
	struct MHD_Response *resp;
	char cr[96];

	if (body_off > SRV_SIZE)
		body_off = SRV_SIZE;
	if (body_len > SRV_SIZE - body_off)
		body_len = SRV_SIZE - body_off;
	resp = MHD_create_response_from_buffer(body_len, srv_data + body_off,
					       MHD_RESPMEM_PERSISTENT);
	snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%u", first,
		 last, SRV_SIZE);
	MHD_add_response_header(resp, "Content-Range", cr);
	return reply(con, 206, resp);
}

static ssize_t truncated_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	uint64_t len = (uint64_t)(uintptr_t)cls;

	/* Half of the declared length, then the connection drops. */
	if (pos >= len / 2)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (max > len / 2 - pos)
		max = len / 2 - pos;
	memcpy(buf, srv_data + pos, max);
	return (ssize_t)max;
}

/* /data and /gate/N: 200 without Range, 206 or 416 with one. */
static enum MHD_Result serve_data(struct MHD_Connection *con, bool ranged,
				  uint64_t first, uint64_t last)
{
	if (!ranged)
		return reply(con, 200,
			     MHD_create_response_from_buffer(
				 SRV_SIZE, srv_data, MHD_RESPMEM_PERSISTENT));
	if (first >= SRV_SIZE) {
		struct MHD_Response *resp = MHD_create_response_from_buffer(
		    0, NULL, MHD_RESPMEM_PERSISTENT);

		MHD_add_response_header(resp, "Content-Range",
					"bytes */1048576");
		return reply(con, 416, resp);
	}
	if (last >= SRV_SIZE)
		last = SRV_SIZE - 1;
	return reply_206(con, first, last, first, last - first + 1);
}

static enum MHD_Result serve_bad(struct MHD_Connection *con, const char *what,
				 uint64_t first, uint64_t last)
{
	uint64_t len = last - first + 1;

	if (!strcmp(what, "200-for-range"))
		return serve_data(con, false, 0, 0);
	if (!strcmp(what, "wrong-range"))
		return reply_206(con, first + 1, last + 1, first + 1, len);
	if (!strcmp(what, "short"))
		return reply_206(con, first, last, first, len - 1);
	if (!strcmp(what, "long"))
		return reply_206(con, first, last, first, len + 100);
	if (!strcmp(what, "truncated")) {
		struct MHD_Response *resp = MHD_create_response_from_callback(
		    len, 4096, truncated_reader, (void *)(uintptr_t)len, NULL);
		char cr[96];

		snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/*",
			 first, last);
		MHD_add_response_header(resp, "Content-Range", cr);
		return reply(con, 206, resp);
	}
	if (!strcmp(what, "no-content-range"))
		return reply(con, 206,
			     MHD_create_response_from_buffer(
				 len, srv_data, MHD_RESPMEM_PERSISTENT));
	if (!strcmp(what, "gzip")) {
		struct MHD_Response *resp = MHD_create_response_from_buffer(
		    len, srv_data + first, MHD_RESPMEM_PERSISTENT);
		char cr[96];

		snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/*",
			 first, last);
		MHD_add_response_header(resp, "Content-Range", cr);
		MHD_add_response_header(resp, "Content-Encoding", "gzip");
		return reply(con, 206, resp);
	}
	if (!strcmp(what, "404"))
		return reply_text(con, 404, "{\"error\": \"no such image\"}",
				  "application/json");
	if (!strcmp(what, "403"))
		return reply_text(con, 403,
				  "{\"error\": \"token has no read grant\"}",
				  "application/json");
	if (!strcmp(what, "500"))
		return reply_text(con, 500, "internal error\n", "text/plain");
	if (!strcmp(what, "503-text"))
		return reply_text(con, 503, "  maintenance\n\n until\t2am \n",
				  "text/plain");
	if (!strcmp(what, "redirect")) {
		struct MHD_Response *resp = MHD_create_response_from_buffer(
		    0, NULL, MHD_RESPMEM_PERSISTENT);

		MHD_add_response_header(resp, "Location", "/data");
		return reply(con, 302, resp);
	}
	if (!strcmp(what, "stall")) {
		/* Headers never come; the client must time out. */
		(void)gate_pass(SRV_GATES - 1, 5);
		return MHD_NO;
	}
	return reply_text(con, 400, "{\"error\": \"unknown bad path\"}",
			  "application/json");
}

struct upload {
	char *data;
	size_t len;
};

static const char *header(struct MHD_Connection *con, const char *name)
{
	const char *v = MHD_lookup_connection_value(con, MHD_HEADER_KIND, name);

	return v ? v : "-";
}

static enum MHD_Result srv_handler(void *cls, struct MHD_Connection *con,
				   const char *url, const char *method,
				   const char *version, const char *upload_data,
				   size_t *upload_data_size, void **con_cls)
{
	struct upload *up = *con_cls;
	uint64_t first = 0, last = SRV_SIZE - 1;
	bool ranged;
	char text[512];

	(void)cls;
	(void)version;
	if (!up) {
		*con_cls = calloc(1, sizeof(*up));
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*upload_data_size > 0) {
		char *n = realloc(up->data, up->len + *upload_data_size);

		if (!n)
			return MHD_NO;
		memcpy(n + up->len, upload_data, *upload_data_size);
		up->data = n;
		up->len += *upload_data_size;
		*upload_data_size = 0;
		return MHD_YES;
	}

	ranged = parse_range(
	    MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Range"), &first,
	    &last);
	if (!strcmp(url, "/data"))
		return serve_data(con, ranged, first, last);
	if (!strncmp(url, "/gate/", 6)) {
		unsigned g = (unsigned)strtoul(url + 6, NULL, 10) % SRV_GATES;

		if (!gate_pass(g, 20))
			return MHD_NO;
		return serve_data(con, ranged, first, last);
	}
	if (!strncmp(url, "/bad/", 5))
		return serve_bad(con, url + 5, first, ranged ? last : 4095);
	if (!strcmp(url, "/echo")) {
		struct MHD_Response *resp = MHD_create_response_from_buffer(
		    up->len, up->data, MHD_RESPMEM_MUST_COPY);

		return reply(con, !strcmp(method, "PUT") ? 201 : 200, resp);
	}
	if (!strcmp(url, "/headers")) {
		snprintf(text, sizeof(text), "ct=%s x=%s x2=%s ae=%s expect=%s",
			 header(con, "Content-Type"), header(con, "X-Test"),
			 header(con, "X-Test2"), header(con, "Accept-Encoding"),
			 header(con, "Expect"));
		return reply_text(con, 200, text, "text/plain");
	}
	if (!strcmp(url, "/auth")) {
		if (strcmp(header(con, "Authorization"), "Bearer s3cret") != 0)
			return reply_text(con, 401,
					  "{\"error\": \"bad token\"}",
					  "application/json");
		return reply_text(con, 200, "ok", "text/plain");
	}
	return reply_text(con, 404, "{\"error\": \"no route\"}",
			  "application/json");
}

static void srv_completed(void *cls, struct MHD_Connection *con, void **con_cls,
			  enum MHD_RequestTerminationCode toe)
{
	struct upload *up = *con_cls;

	(void)cls;
	(void)con;
	(void)toe;
	if (up) {
		free(up->data);
		free(up);
		*con_cls = NULL;
	}
}

static int srv_start(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < SRV_SIZE; i += 8) {
		uint64_t v = xorshift(&seed);

		memcpy(srv_data + i, &v, 8);
	}
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
	    NULL, NULL, srv_handler, NULL, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&sin, MHD_OPTION_NOTIFY_COMPLETED, srv_completed,
	    NULL, MHD_OPTION_END);
	if (!srv)
		return -EIO;
	info = MHD_get_daemon_info(srv, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(srv_url, sizeof(srv_url), "http://127.0.0.1:%u",
		 (unsigned)info->port);
	return 0;
}

static void srv_stop(void)
{
	pthread_mutex_lock(&srv_lock);
	srv_stopping = true;
	pthread_cond_broadcast(&srv_cond);
	pthread_mutex_unlock(&srv_lock);
	MHD_stop_daemon(srv);
}

/* A self-signed P-256 certificate for 127.0.0.1: PEM key and cert (caller
 * frees), and its public key pin "sha256//BASE64". */
static char *bio_string(BIO *b)
{
	char *p, *s;
	long n = BIO_get_mem_data(b, &p);

	s = malloc((size_t)n + 1);
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	return s;
}

static void tls_make_cert(char **ret_key, char **ret_cert, char *pin,
			  size_t pin_len)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
	unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH], b64[64];
	int der_len;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pkey);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"127.0.0.1", -1, -1,
				   0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name,
				  "IP:127.0.0.1");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
				  "critical,CA:TRUE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(x, pkey, EVP_sha256());
	PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL);
	PEM_write_bio_X509(cb, x);
	*ret_key = bio_string(kb);
	*ret_cert = bio_string(cb);
	der_len = i2d_PUBKEY(pkey, &der);
	SHA256(der, (size_t)der_len, md);
	EVP_EncodeBlock(b64, md, sizeof(md));
	snprintf(pin, pin_len, "sha256//%s", (char *)b64);
	OPENSSL_free(der);
	BIO_free(kb);
	BIO_free(cb);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

static struct fetch *engine(unsigned max_inflight, unsigned max_background)
{
	struct fetch_config cfg = {
	    .base_url = srv_url,
	    .allow_plain = true,
	    .stall_timeout_s = 5,
	    .max_inflight = max_inflight,
	    .max_background = max_background,
	};
	struct fetch *f = NULL;
	int r;

	r = fetch_new(&cfg, &f);
	check_int(r, ==, 0);
	return f;
}

/* One synchronous request. */
static int run(struct fetch *f, struct fetch_req *req, const char *path,
	       uint64_t off, uint64_t len, void *buf, size_t buf_len)
{
	req->path = path;
	req->off = off;
	req->len = len;
	req->buf = buf;
	req->buf_len = buf_len;
	return fetch_run(f, req);
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* Asynchronous requests, waited for as a batch. */
struct batch {
	pthread_mutex_t lock; /* protects left */
	pthread_cond_t cond;
	int left;
};

static atomic_int completion_seq;

struct item {
	struct fetch_req req; /* first: done() gets &item->req */
	struct batch *batch;
	int seq; /* order of completion, from 1 */
	uint8_t *buf;
};

static void item_done(struct fetch_req *req)
{
	struct item *it = (struct item *)req;

	it->seq = atomic_fetch_add(&completion_seq, 1) + 1;
	pthread_mutex_lock(&it->batch->lock);
	it->batch->left--;
	pthread_cond_broadcast(&it->batch->cond);
	pthread_mutex_unlock(&it->batch->lock);
}

static void batch_init(struct batch *b, int n)
{
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->left = n;
}

/* Wait until at most `left` remain; false on timeout. */
static bool batch_wait(struct batch *b, int left, double secs)
{
	struct timespec until = deadline(secs);
	bool ok;

	pthread_mutex_lock(&b->lock);
	while (b->left > left)
		if (pthread_cond_timedwait(&b->cond, &b->lock, &until) ==
		    ETIMEDOUT)
			break;
	ok = b->left <= left;
	pthread_mutex_unlock(&b->lock);
	return ok;
}

static int batch_left(struct batch *b)
{
	int left;

	pthread_mutex_lock(&b->lock);
	left = b->left;
	pthread_mutex_unlock(&b->lock);
	return left;
}

static void batch_fini(struct batch *b)
{
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
}

static void item_set(struct item *it, struct batch *b, const char *path,
		     uint64_t off, uint64_t len, enum fetch_prio prio)
{
	memset(it, 0, sizeof(*it));
	it->batch = b;
	it->buf = malloc(len ? len : 1);
	it->req.path = path;
	it->req.off = off;
	it->req.len = len;
	it->req.buf = it->buf;
	it->req.buf_len = len;
	it->req.prio = prio;
	it->req.done = item_done;
}

static bool item_ok(const struct item *it)
{
	return it->req.result == 0 && it->req.got == it->req.len &&
	       memcmp(it->buf, srv_data + it->req.off, it->req.len) == 0;
}

static void test_range_read(void)
{
	struct fetch *f = engine(0, 0);
	struct fetch_req req = {0};
	uint8_t *buf = malloc(SRV_SIZE);
	struct fetch_stats st;
	int r;

	r = run(f, &req, "/data", 12345, 4096, buf, 8192);
	check_int(r, ==, 0);
	check_int(req.http_status, ==, 206);
	check_uint(req.got, ==, 4096);
	check_mem(buf, srv_data + 12345, 4096);

	/* The last byte, and a whole-body GET. */
	r = run(f, &req, "/data", SRV_SIZE - 1, 1, buf, 1);
	check_int(r, ==, 0);
	check_int(buf[0], ==, srv_data[SRV_SIZE - 1]);
	r = run(f, &req, "/data", 0, 0, buf, SRV_SIZE);
	check_int(r, ==, 0);
	check_int(req.http_status, ==, 200);
	check_uint(req.got, ==, SRV_SIZE);
	check_mem(buf, srv_data, SRV_SIZE);

	/* HEAD has no body. */
	req.method = "HEAD";
	r = run(f, &req, "/data", 0, 0, NULL, 0);
	check_int(r, ==, 0);
	check_int(req.http_status, ==, 200);
	check_uint(req.got, ==, 0);
	req.method = NULL;

	fetch_get_stats(f, &st);
	check_uint(st.requests, ==, 4);
	check_uint(st.demand_requests, ==, 4);
	check_uint(st.errors, ==, 0);
	check_uint(st.bytes, ==, 4096 + 1 + SRV_SIZE);
	fetch_free(f);
	free(buf);
}

#define N_CONCURRENT 200
#define N_SUBMITTERS 4

struct submitter {
	struct fetch *f;
	struct item *items;
	int n;
};

static void *submit_thread(void *opaque)
{
	struct submitter *s = opaque;

	for (int i = 0; i < s->n; i++)
		fetch_submit(s->f, &s->items[i].req);
	return NULL;
}

static void test_concurrent(void)
{
	struct fetch *f = engine(8, 4);
	struct item *items = calloc(N_CONCURRENT, sizeof(*items));
	struct submitter subs[N_SUBMITTERS];
	pthread_t th[N_SUBMITTERS];
	uint64_t seed = 42, bytes = 0, demand = 0;
	struct fetch_stats st;
	struct batch b;
	int bad = 0;

	batch_init(&b, N_CONCURRENT);
	for (int i = 0; i < N_CONCURRENT; i++) {
		uint64_t len = xorshift(&seed) % 65536 + 1;
		uint64_t off = xorshift(&seed) % (SRV_SIZE - len + 1);
		enum fetch_prio prio = xorshift(&seed) % 2
					   ? FETCH_PRIO_DEMAND
					   : FETCH_PRIO_BACKGROUND;

		item_set(&items[i], &b, "/data", off, len, prio);
		bytes += len;
		demand += prio == FETCH_PRIO_DEMAND;
	}
	for (int t = 0; t < N_SUBMITTERS; t++) {
		subs[t].f = f;
		subs[t].items = items + t * (N_CONCURRENT / N_SUBMITTERS);
		subs[t].n = N_CONCURRENT / N_SUBMITTERS;
		pthread_create(&th[t], NULL, submit_thread, &subs[t]);
	}
	for (int t = 0; t < N_SUBMITTERS; t++)
		pthread_join(th[t], NULL);
	check(batch_wait(&b, 0, 20));
	for (int i = 0; i < N_CONCURRENT; i++)
		bad += !item_ok(&items[i]);
	check_int(bad, ==, 0);
	fetch_get_stats(f, &st);
	check_uint(st.requests, ==, N_CONCURRENT);
	check_uint(st.demand_requests, ==, demand);
	check_uint(st.bytes, ==, bytes);
	check_uint(st.errors, ==, 0);
	fetch_free(f);
	for (int i = 0; i < N_CONCURRENT; i++)
		free(items[i].buf);
	free(items);
	batch_fini(&b);
}

/* A range request to a misbehaving path: its error, and (untouched)
 * whether any byte reached buf. */
static void expect_bad(const char *path, uint64_t off, uint64_t len, int err,
		       bool untouched, const char *msg)
{
	struct fetch *f = engine(0, 0);
	struct fetch_req req = {0};
	size_t buf_len = 8192;
	uint8_t *buf = malloc(buf_len);
	int r;

	memset(buf, 0xaa, buf_len);
	r = run(f, &req, path, off, len, buf, buf_len);
	check_int(r, ==, err);
	check(req.result < 0);
	check(req.errmsg[0] != '\0');
	if (untouched)
		check(all_bytes(buf, buf_len, 0xaa));
	if (msg && !check(strstr(req.errmsg, msg)))
		printf("# errmsg: %s\n", req.errmsg);
	fetch_free(f);
	free(buf);
}

static void test_bad_replies(void)
{
	expect_bad("/bad/200-for-range", 100, 4096, -EBADMSG, true, "200");
	expect_bad("/bad/wrong-range", 100, 4096, -EBADMSG, true,
		   "Content-Range");
	expect_bad("/bad/no-content-range", 0, 4096, -EBADMSG, true,
		   "Content-Range");
	expect_bad("/bad/gzip", 0, 4096, -EBADMSG, true, "Content-Encoding");
	expect_bad("/bad/short", 0, 4096, -EBADMSG, false, "4095 bytes");
	expect_bad("/bad/long", 0, 4096, -EBADMSG, false, "more than");
	expect_bad("/bad/truncated", 0, 8192, -EIO, false, NULL);
	expect_bad("/bad/404", 0, 4096, -ENOENT, true, "no such image");
	expect_bad("/bad/403", 0, 4096, -EACCES, true,
		   "HTTP 403: token has no read grant");
	expect_bad("/bad/500", 0, 4096, -EIO, true, "HTTP 500");
	expect_bad("/data", 2 * SRV_SIZE, 10, -ERANGE, true, "HTTP 416");
	expect_bad("/nowhere", 0, 0, -ENOENT, true, "no route");
	/* A whole body larger than buf. */
	expect_bad("/data", 0, 0, -EFBIG, false, NULL);
}

/* A stalled transfer times out; and a request's deadline bounds it
 * whatever the stall timeout (it is how a reader's --io-timeout cuts a
 * stalled server short). */
static void test_stall(void)
{
	struct fetch_config cfg = {
	    .base_url = srv_url,
	    .allow_plain = true,
	};
	struct fetch *f = NULL;
	struct fetch_req req = {0};
	uint8_t buf[4096];
	uint64_t t0;
	int r;

	for (long stall = 1; stall <= 30; stall += 29) {
		cfg.stall_timeout_s = stall;
		r = fetch_new(&cfg, &f);
		check_int(r, ==, 0);
		memset(&req, 0, sizeof(req));
		t0 = now_ns();
		if (stall == 30)
			req.deadline_ns = t0 + 300000000ull;
		r = run(f, &req, "/bad/stall", 0, sizeof(buf), buf,
			sizeof(buf));
		check_int(r, ==, -ETIMEDOUT);
		check_uint(now_ns() - t0, <, 5000000000ull);
		if (stall == 1) {
			fetch_free(f);
			continue;
		}
		check_uint(now_ns() - t0, >=, 290000000ull);
		/* Past already: abandoned at once, even for a good range. */
		memset(&req, 0, sizeof(req));
		req.deadline_ns = now_ns() - 1;
		r = run(f, &req, "/data", 0, sizeof(buf), buf, sizeof(buf));
		check_int(r, ==, -ETIMEDOUT);
		/* A deadline with room changes nothing. */
		memset(&req, 0, sizeof(req));
		req.deadline_ns = now_ns() + 10000000000ull;
		r = run(f, &req, "/data", 0, sizeof(buf), buf, sizeof(buf));
		check_int(r, ==, 0);
		fetch_free(f);
	}
}

static int run_with(const char *base_url, bool allow_plain, const char *path,
		    struct fetch_req *req)
{
	struct fetch_config cfg = {.base_url = base_url,
				   .allow_plain = allow_plain};
	struct fetch *f = NULL;
	uint8_t buf[64];
	int r;

	r = fetch_new(&cfg, &f);
	if (r < 0)
		return r;
	r = run(f, req, path, 0, sizeof(buf), buf, sizeof(buf));
	fetch_free(f);
	return r;
}

static void test_protocols(void)
{
	struct fetch_req req = {0};
	int r;

	r = run_with("file:///etc", false, "/hostname", &req);
	check_int(r, ==, -EPROTONOSUPPORT);
	r = run_with("file:///etc", true, "/hostname", &req);
	check_int(r, ==, -EPROTONOSUPPORT);
	/* Plain http only when asked for. */
	r = run_with(srv_url, false, "/data", &req);
	check_int(r, ==, -EPROTONOSUPPORT);
	check_int(req.http_status, ==, 0);
	r = run_with(srv_url, true, "/data", &req);
	check_int(r, ==, 0);
}

static void test_refused(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	struct fetch_req req = {0};
	char url[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int r;

	/* Bound but not listening: connecting to it is refused, and no
	 * one else can take the port meanwhile. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r = bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	check_int(r, ==, 0);
	r = getsockname(fd, (struct sockaddr *)&sin, &sl);
	check_int(r, ==, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(sin.sin_port));
	r = run_with(url, true, "/data", &req);
	check_int(r, ==, -ECONNREFUSED);
	close(fd);
}

static void test_config(void)
{
	struct fetch_config cfg = {.base_url = srv_url, .allow_plain = true};
	struct fetch *f = NULL;
	int r;

	cfg.max_inflight = 2;
	cfg.max_background = 2;
	r = fetch_new(&cfg, &f);
	check_int(r, ==, -EINVAL);
	cfg.max_inflight = 1;
	cfg.max_background = 0;
	r = fetch_new(&cfg, &f);
	check_int(r, ==, -EINVAL);
	cfg.max_inflight = 2; /* background defaults to 1 */
	r = fetch_new(&cfg, &f);
	check_int(r, ==, 0);
	fetch_free(f);
	f = NULL;
	cfg.token = "abc\r\nX-Evil: 1";
	r = fetch_new(&cfg, &f);
	check_int(r, ==, -EINVAL);
	cfg.token = NULL;
	cfg.base_url = NULL;
	r = fetch_new(&cfg, &f);
	check_int(r, ==, -EINVAL);
	check(f == NULL);
	fetch_free(NULL);
}

static void test_cancel(void)
{
	struct fetch *f = engine(4, 2);
	struct item items[10];
	struct batch b;
	int canceled = 0;

	gate_set(1, false);
	batch_init(&b, 10);
	for (int i = 0; i < 10; i++) {
		item_set(&items[i], &b, "/gate/1", (uint64_t)i * 4096, 4096,
			 i < 6 ? FETCH_PRIO_DEMAND : FETCH_PRIO_BACKGROUND);
		fetch_submit(f, &items[i].req);
	}
	/* Four in flight (blocked in the server), six queued. */
	check(gate_wait_for(1, 4));
	fetch_free(f);
	for (int i = 0; i < 10; i++)
		canceled += items[i].req.result == -ECANCELED;
	check_int(canceled, ==, 10);
	check_int(b.left, ==, 0);
	gate_set(1, true);
	for (int i = 0; i < 10; i++)
		free(items[i].buf);
	batch_fini(&b);
}

static void test_pacing(void)
{
	struct fetch *f = engine(8, 4);
	enum { N = 64, CHUNK = 64 * 1024 };
	struct item *items = calloc(N, sizeof(*items));
	struct item slow[2];
	struct fetch_req req = {0};
	uint8_t *buf = malloc(256 * 1024);
	struct batch b, b2;
	uint64_t t0, dt;
	int bad = 0;
	int r;

	/* 4 MiB at 2 MiB/s: about 2 s. */
	fetch_set_background_rate(f, 2u << 20);
	batch_init(&b, N);
	t0 = now_ns();
	for (int i = 0; i < N; i++) {
		item_set(&items[i], &b, "/data", (uint64_t)i * CHUNK % SRV_SIZE,
			 CHUNK, FETCH_PRIO_BACKGROUND);
		fetch_submit(f, &items[i].req);
	}
	check(batch_wait(&b, 0, 10));
	dt = now_ns() - t0;
	for (int i = 0; i < N; i++)
		bad += !item_ok(&items[i]);
	check_int(bad, ==, 0);
	printf("# 4 MiB background at 2 MiB/s took %.2f s\n", dt / 1e9);
	check_uint(dt, >=, 1500000000ull);
	check_uint(dt, <, 6000000000ull);

	/* A fresh engine at 1 KiB/s: one 64 KiB background request goes at
	 * once and puts the bucket 64 s in debt, so the next one waits;
	 * demand does not. */
	fetch_free(f);
	f = engine(8, 4);
	fetch_set_background_rate(f, 1024);
	batch_init(&b2, 2);
	item_set(&slow[0], &b2, "/data", 0, CHUNK, FETCH_PRIO_BACKGROUND);
	item_set(&slow[1], &b2, "/data", CHUNK, CHUNK, FETCH_PRIO_BACKGROUND);
	fetch_submit(f, &slow[0].req);
	check(batch_wait(&b2, 1, 5));
	fetch_submit(f, &slow[1].req);
	t0 = now_ns();
	r = run(f, &req, "/data", 4096, 256 * 1024, buf, 256 * 1024);
	check_int(r, ==, 0);
	check_uint(now_ns() - t0, <, 3000000000ull);
	check_mem(buf, srv_data + 4096, 256 * 1024);
	check_int(batch_left(&b2), ==, 1); /* still waiting for budget */
	/* Queued behind the same debt, a request with a deadline ends at
	 * it, not when the bucket lets it go: nobody waits for it then. */
	memset(&req, 0, sizeof(req));
	req.prio = FETCH_PRIO_BACKGROUND;
	t0 = now_ns();
	req.deadline_ns = t0 + 300000000ull;
	r = run(f, &req, "/data", 0, 4096, buf, 4096);
	check_int(r, ==, -ETIMEDOUT);
	check_uint(now_ns() - t0, >=, 290000000ull);
	check_uint(now_ns() - t0, <, 2000000000ull);
	check(strstr(req.errmsg, "queued") != NULL);
	check_int(batch_left(&b2), ==, 1);
	/* Lifting the limit wakes it. */
	t0 = now_ns();
	fetch_set_background_rate(f, 0);
	check(batch_wait(&b2, 0, 5));
	check_uint(now_ns() - t0, <, 3000000000ull);
	check(item_ok(&slow[0]));
	check(item_ok(&slow[1]));

	fetch_free(f);
	for (int i = 0; i < N; i++)
		free(items[i].buf);
	free(slow[0].buf);
	free(slow[1].buf);
	free(items);
	free(buf);
	batch_fini(&b);
	batch_fini(&b2);
}

static void test_upload(void)
{
	struct fetch *f = engine(0, 0);
	struct fetch_req req = {0};
	size_t len = 100 * 1024;
	uint8_t *body = malloc(len), *buf = malloc(len), *big;
	char text[256] = {0};
	int r;

	memcpy(body, srv_data + 777, len);
	req.method = "PUT";
	req.body = body;
	req.body_len = len;
	r = run(f, &req, "/echo", 0, 0, buf, len);
	check_int(r, ==, 0);
	check_int(req.http_status, ==, 201);
	check_uint(req.got, ==, len);
	check_mem(buf, body, len);

	req.method = "POST";
	req.body = "abc";
	req.body_len = 3;
	r = run(f, &req, "/echo", 0, 0, buf, len);
	check_int(r, ==, 0);
	check_int(req.http_status, ==, 200);
	check_uint(req.got, ==, 3);
	check_mem(buf, "abc", 3);

	req.body = NULL;
	req.body_len = 0;
	r = run(f, &req, "/echo", 0, 0, buf, len);
	check_int(r, ==, 0);
	check_uint(req.got, ==, 0);

	/* Headers that go out, and those that must not. */
	req.body = "{}";
	req.body_len = 2;
	req.content_type = "application/json";
	req.extra_headers[0] = "X-Test: hello";
	req.extra_headers[1] = "X-Test2: world";
	r = run(f, &req, "/headers", 0, 0, text, sizeof(text) - 1);
	check_int(r, ==, 0);
	check(!strcmp(text,
		      "ct=application/json x=hello x2=world ae=- expect=-"));
	printf("# %s\n", text);
	req.extra_headers[1] = "X-Test: a\r\nX-Evil: b";
	r = run(f, &req, "/headers", 0, 0, text, sizeof(text) - 1);
	check_int(r, ==, -EINVAL);
	req.extra_headers[0] = req.extra_headers[1] = NULL;

	/* No buf: a reply body of up to VMF_JSON_MAX is dropped. */
	req.content_type = NULL;
	req.body = body;
	req.body_len = len;
	r = run(f, &req, "/echo", 0, 0, NULL, 0);
	check_int(r, ==, 0);
	check_uint(req.got, ==, 0);
	big = calloc(1, VMF_JSON_MAX + 1);
	req.body = big;
	req.body_len = VMF_JSON_MAX + 1;
	r = run(f, &req, "/echo", 0, 0, NULL, 0);
	check_int(r, ==, -EFBIG);
	free(big);
	/* A range is for GET only. */
	r = run(f, &req, "/echo", 0, 2, buf, len);
	check_int(r, ==, -EINVAL);
	req.method = "PATCH"; /* unsupported */
	r = run(f, &req, "/echo", 0, 0, buf, len);
	check_int(r, ==, -EINVAL);
	fetch_free(f);
	free(body);
	free(buf);
}

static void test_token(void)
{
	struct fetch_config cfg = {
	    .base_url = srv_url, .allow_plain = true, .token = "s3cret"};
	struct fetch *f = NULL;
	struct fetch_req req = {0};
	char buf[16];
	int r;

	r = fetch_new(&cfg, &f);
	check_int(r, ==, 0);
	r = run(f, &req, "/auth", 0, 0, buf, sizeof(buf));
	check_int(r, ==, 0);
	check_mem(buf, "ok", 2);
	fetch_free(f);

	f = engine(0, 0);
	r = run(f, &req, "/auth", 0, 0, buf, sizeof(buf));
	check_int(r, ==, -EACCES);
	check_int(req.http_status, ==, 401);
	check(strstr(req.errmsg, "bad token"));
	fetch_free(f);
}

/* With max_inflight 2 background may hold one slot: demand is never
 * stuck behind background, and jumps the background queue. */
static void test_demand_first(void)
{
	enum { NB = 20 };
	struct fetch *f = engine(2, 1), *f4 = engine(8, 4);
	struct item bg[NB], d, g1, b1, q[4];
	struct batch b, bd, bq, bw;
	int bad = 0;

	/* Background requests block in the server (one at a time, the
	 * rest queued); a demand request completes meanwhile. */
	gate_set(2, false);
	batch_init(&b, NB);
	for (int i = 0; i < NB; i++) {
		item_set(&bg[i], &b, "/gate/2", (uint64_t)i * 1000, 1000,
			 FETCH_PRIO_BACKGROUND);
		fetch_submit(f, &bg[i].req);
	}
	check(gate_wait_for(2, 1));
	batch_init(&bd, 1);
	item_set(&d, &bd, "/data", 5000, 3000, FETCH_PRIO_DEMAND);
	fetch_submit(f, &d.req);
	check(batch_wait(&bd, 0, 5));
	check(item_ok(&d));
	check_int(batch_left(&b), ==, NB);
	gate_set(2, true);
	check(batch_wait(&b, 0, 10));
	for (int i = 0; i < NB; i++)
		bad += !item_ok(&bg[i]);
	check_int(bad, ==, 0);

	/* Both slots busy (a demand at gate 3, a background at gate 4);
	 * queue four background requests, then a demand one.  When the
	 * background one ends, the one free slot must go to the demand
	 * request, so it completes before all four. */
	gate_set(3, false);
	gate_set(4, false);
	batch_init(&bq, 7);
	item_set(&g1, &bq, "/gate/3", 0, 100, FETCH_PRIO_DEMAND);
	item_set(&b1, &bq, "/gate/4", 0, 100, FETCH_PRIO_BACKGROUND);
	fetch_submit(f, &g1.req);
	fetch_submit(f, &b1.req);
	check(gate_wait_for(3, 1));
	check(gate_wait_for(4, 1));
	for (int i = 0; i < 4; i++) {
		item_set(&q[i], &bq, "/data", (uint64_t)i * 100, 100,
			 FETCH_PRIO_BACKGROUND);
		fetch_submit(f, &q[i].req);
	}
	free(d.buf);
	item_set(&d, &bq, "/data", 9999, 100, FETCH_PRIO_DEMAND);
	fetch_submit(f, &d.req);
	gate_set(4, true);
	check(batch_wait(&bq, 5, 5)); /* b1, then d */
	gate_set(3, true);
	check(batch_wait(&bq, 0, 10));
	check(item_ok(&d));
	for (int i = 0; i < 4; i++) {
		check(item_ok(&q[i]));
		check_int(q[i].seq, >, d.seq);
	}
	check(item_ok(&g1));
	check(item_ok(&b1));

	/* While a demand request is in flight, one background request at
	 * a time; all of them once demand has been quiet for a while. */
	gate_set(3, false);
	gate_set(4, false);
	free(g1.buf);
	batch_init(&bw, 5);
	item_set(&g1, &bw, "/gate/3", 0, 100, FETCH_PRIO_DEMAND);
	fetch_submit(f4, &g1.req);
	check(gate_wait_for(3, 1));
	for (int i = 0; i < 4; i++) {
		free(q[i].buf);
		item_set(&q[i], &bw, "/gate/4", (uint64_t)i * 100, 100,
			 FETCH_PRIO_BACKGROUND);
		fetch_submit(f4, &q[i].req);
	}
	check(gate_wait_for(4, 1));
	usleep(300000);
	check_int(gate_count(4), ==, 1);
	gate_set(3, true);
	check(gate_wait_for(4, 4));
	gate_set(4, true);
	check(batch_wait(&bw, 0, 10));
	for (int i = 0; i < 4; i++)
		check(item_ok(&q[i]));

	fetch_free(f);
	fetch_free(f4);
	batch_fini(&bw);
	for (int i = 0; i < NB; i++)
		free(bg[i].buf);
	for (int i = 0; i < 4; i++)
		free(q[i].buf);
	free(d.buf);
	free(g1.buf);
	free(b1.buf);
	batch_fini(&b);
	batch_fini(&bd);
	batch_fini(&bq);
}

/* The rule for giving way to demand (bgshare.c), driven with made-up
 * times: no demand, a burst, the quiet time that follows the gaps, its
 * cap, and the share of the fastest delivery rate seen. */
static void test_bgshare(void)
{
	const uint64_t ms = 1000000, t0 = 1000 * ms;
	struct bgshare s;
	struct bgshare_limit l;
	uint64_t t;

	/* No demand ever: every slot, the user's rate (or unpaced). */
	bgshare_init(&s, t0);
	bgshare_decide(&s, t0 + 5000 * ms, 0, 4, 0, &l);
	check(!l.restricted);
	check(!l.recent);
	check_int(l.slots, ==, 4);
	check_uint(l.rate, ==, 0);
	bgshare_decide(&s, t0 + 5000 * ms, 0, 4, 12345, &l);
	check_uint(l.rate, ==, 12345);

	/* Demand in flight: one slot, paced to the floor (no rate known
	 * yet), or to the user's rate when that is lower. */
	bgshare_demand_start(&s, t0);
	bgshare_decide(&s, t0 + 1 * ms, 1, 4, 0, &l);
	check(l.restricted);
	check_int(l.slots, ==, 1);
	check_uint(l.rate, ==, BGSHARE_MIN_RATE);
	check_uint(l.until_ns, ==, 0);
	bgshare_decide(&s, t0 + 1 * ms, 1, 4, 1000, &l);
	check_uint(l.rate, ==, 1000);

	/* One request: the quiet time is the floor, 200 ms. */
	bgshare_demand_end(&s, t0 + 10 * ms, true);
	check_uint(bgshare_quiet_ns(&s), ==, BGSHARE_QUIET_MIN_NS);
	bgshare_decide(&s, t0 + 100 * ms, 0, 4, 0, &l);
	check(l.restricted);
	check_uint(l.until_ns, ==, t0 + 210 * ms);
	bgshare_decide(&s, t0 + 210 * ms, 0, 4, 0, &l);
	check(!l.restricted);
	check_int(l.slots, ==, 4);
	/* One request with none before: not a reader's bursts. */
	check(!l.recent);

	/* Bursts every 400 ms (300 ms gaps), each of back-to-back
	 * requests (1 ms gaps, within the burst: not averaged): the quiet
	 * time becomes 3x300 ms, so a 500 ms gap is still restricted. */
	t = t0 + 10 * ms;
	for (int burst = 0; burst < 6; burst++) {
		t += 300 * ms;
		for (int i = 0; i < 5; i++) {
			bgshare_demand_start(&s, t);
			t += 19 * ms;
			bgshare_demand_end(&s, t, true);
			t += 1 * ms;
		}
		t -= 1 * ms;
	}
	check_uint(bgshare_quiet_ns(&s), ==, 900 * ms);
	/* Bursts after gaps: "recent" (short ranges) for 10 s after the
	 * last one began, t - 99 ms. */
	bgshare_decide(&s, t + BGSHARE_RECENT_NS - 100 * ms, 0, 4, 0, &l);
	check(l.recent);
	bgshare_decide(&s, t + BGSHARE_RECENT_NS - 99 * ms, 0, 4, 0, &l);
	check(!l.recent);
	bgshare_decide(&s, t + 500 * ms, 0, 4, 0, &l);
	check(l.restricted);
	check_int(l.slots, ==, 1);
	/* Quiet long enough: everything again. */
	bgshare_decide(&s, t + 900 * ms, 0, 4, 0, &l);
	check(!l.restricted);
	check_int(l.slots, ==, 4);
	check_uint(l.rate, ==, 0);

	/* Gaps of 1.5 s: 3x that is capped at 2 s. */
	for (int burst = 0; burst < 6; burst++) {
		t += 1500 * ms;
		bgshare_demand_start(&s, t);
		bgshare_demand_end(&s, t + 5 * ms, true);
		t += 5 * ms;
	}
	check_uint(bgshare_quiet_ns(&s), ==, BGSHARE_QUIET_MAX_NS);
	bgshare_decide(&s, t + 1999 * ms, 0, 4, 0, &l);
	check(l.restricted);
	bgshare_decide(&s, t + 2000 * ms, 0, 4, 0, &l);
	check(!l.restricted);
	/* A pause of 2 s or more: the next burst starts from the floor. */
	t += 2500 * ms;
	bgshare_demand_start(&s, t);
	check_uint(bgshare_quiet_ns(&s), ==, BGSHARE_QUIET_MIN_NS);
	/* Another demand request still in flight: not idle, no gap. */
	bgshare_demand_start(&s, t + 1 * ms);
	bgshare_demand_end(&s, t + 2 * ms, false);
	bgshare_demand_start(&s, t + 700 * ms);
	check_uint(bgshare_quiet_ns(&s), ==, BGSHARE_QUIET_MIN_NS);

	/* The share: a tenth of the fastest 500 ms window (40 MB in 1 s
	 * of windows, then a slower one, which does not lower it). */
	bgshare_init(&s, t0);
	for (int i = 1; i <= 20; i++)
		bgshare_delivered(&s, t0 + (uint64_t)i * 50 * ms, 2000000);
	bgshare_delivered(&s, t0 + 2000 * ms, 1000000);
	bgshare_delivered(&s, t0 + 2600 * ms, 0);
	bgshare_demand_start(&s, t0 + 2600 * ms);
	bgshare_decide(&s, t0 + 2600 * ms, 1, 4, 0, &l);
	check_uint(l.rate, ==, 4000000);
	bgshare_decide(&s, t0 + 2600 * ms, 1, 4, 1000000, &l);
	check_uint(l.rate, ==, 1000000);
	bgshare_decide(&s, t0 + 2600 * ms, 1, 0, 0, &l);
	check_int(l.slots, ==, 0);
}

/* The engine gives way: while a demand request is in flight,
 * background requests go one at a time and paced to the share (the
 * floor, on an engine that has no rate yet); once demand has been
 * quiet, the rest go at once. */
static void test_give_way(void)
{
	enum { NB = 16, CHUNK = 64 * 1024 };
	struct fetch *f = engine(8, 4);
	struct item bg[NB], d;
	struct batch b, bd;
	int bad = 0, done_while_demand;

	/* A reader's bursts: one demand request, a gap, another (held at
	 * gate 5 while the background requests queue). */
	batch_init(&bd, 1);
	item_set(&d, &bd, "/data", 0, 100, FETCH_PRIO_DEMAND);
	fetch_submit(f, &d.req);
	check(batch_wait(&bd, 0, 5));
	check(!fetch_demand_recent(f));
	usleep(100000);
	free(d.buf);
	batch_fini(&bd);
	gate_set(5, false);
	batch_init(&bd, 1);
	item_set(&d, &bd, "/gate/5", 0, 100, FETCH_PRIO_DEMAND);
	fetch_submit(f, &d.req);
	check(gate_wait_for(5, 1));
	check(fetch_demand_recent(f));
	batch_init(&b, NB);
	for (int i = 0; i < NB; i++) {
		item_set(&bg[i], &b, "/data", (uint64_t)i * CHUNK, CHUNK,
			 FETCH_PRIO_BACKGROUND);
		fetch_submit(f, &bg[i].req);
	}
	/* 1 s at 256 KiB/s: about four of them (plus one started on an
	 * empty bucket), not all sixteen. */
	usleep(1000000);
	done_while_demand = NB - batch_left(&b);
	check_int(done_while_demand, >=, 2);
	check_int(done_while_demand, <=, 7);
	gate_set(5, true);
	check(batch_wait(&bd, 0, 5));
	check(item_ok(&d));
	/* The rest: no longer paced once the quiet time is over (at the
	 * share it would take 2-3 s more). */
	check(batch_wait(&b, 0, 1.5));
	for (int i = 0; i < NB; i++)
		bad += !item_ok(&bg[i]);
	check_int(bad, ==, 0);
	/* Full rate, but still short ranges: the burst began 1.5 s ago. */
	check(fetch_demand_recent(f));

	fetch_free(f);
	for (int i = 0; i < NB; i++)
		free(bg[i].buf);
	free(d.buf);
	batch_fini(&b);
	batch_fini(&bd);
}

/* FETCH_PRIO_PREFETCH: after demand, before background, not paced. */
static void test_prefetch(void)
{
	enum { CHUNK = 64 * 1024 };
	struct fetch *f = engine(8, 4);
	struct item slow[2], pf[4], g, q[2], p1;
	struct batch b, bp, bq;
	uint64_t t0;

	/* At 1 KiB/s the second background request waits ~64 s for its
	 * budget; four prefetch requests go at once. */
	fetch_set_background_rate(f, 1024);
	batch_init(&b, 2);
	item_set(&slow[0], &b, "/data", 0, CHUNK, FETCH_PRIO_BACKGROUND);
	item_set(&slow[1], &b, "/data", CHUNK, CHUNK, FETCH_PRIO_BACKGROUND);
	fetch_submit(f, &slow[0].req);
	check(batch_wait(&b, 1, 5));
	fetch_submit(f, &slow[1].req);
	batch_init(&bp, 4);
	t0 = now_ns();
	for (int i = 0; i < 4; i++) {
		item_set(&pf[i], &bp, "/data", (uint64_t)(i + 2) * CHUNK, CHUNK,
			 FETCH_PRIO_PREFETCH);
		fetch_submit(f, &pf[i].req);
	}
	check(batch_wait(&bp, 0, 5));
	check_uint(now_ns() - t0, <, 3000000000ull);
	for (int i = 0; i < 4; i++)
		check(item_ok(&pf[i]));
	check_int(batch_left(&b), ==, 1); /* still waiting for budget */
	/* It never starts: cancelled as its owner stops. */
	slow[1].req.opaque = &slow[1];
	check_uint(fetch_cancel_queued(f, &slow[1]), ==, 1);
	check(batch_wait(&b, 0, 5));
	check_int(slow[1].req.result, ==, -ECANCELED);
	fetch_free(f);

	/* One slot for the background class, busy at gate 6: a prefetch
	 * request queued after two background ones still goes first. */
	f = engine(2, 1);
	gate_set(6, false);
	batch_init(&bq, 4);
	item_set(&g, &bq, "/gate/6", 0, 100, FETCH_PRIO_BACKGROUND);
	fetch_submit(f, &g.req);
	check(gate_wait_for(6, 1));
	for (int i = 0; i < 2; i++) {
		item_set(&q[i], &bq, "/data", (uint64_t)i * 100, 100,
			 FETCH_PRIO_BACKGROUND);
		fetch_submit(f, &q[i].req);
	}
	item_set(&p1, &bq, "/data", 7777, 100, FETCH_PRIO_PREFETCH);
	fetch_submit(f, &p1.req);
	gate_set(6, true);
	check(batch_wait(&bq, 0, 10));
	check(item_ok(&p1) && item_ok(&g));
	for (int i = 0; i < 2; i++) {
		check(item_ok(&q[i]));
		check_int(q[i].seq, >, p1.seq);
	}
	fetch_free(f);
	for (int i = 0; i < 4; i++)
		free(pf[i].buf);
	for (int i = 0; i < 2; i++) {
		free(slow[i].buf);
		free(q[i].buf);
	}
	free(g.buf);
	free(p1.buf);
	batch_fini(&b);
	batch_fini(&bp);
	batch_fini(&bq);
}

static int tls_read(const char *url, const char *cacert, const char *pin,
		    bool insecure)
{
	struct fetch_config cfg = {.base_url = url,
				   .cacert = cacert,
				   .pin_sha256 = pin,
				   .insecure = insecure};
	struct fetch *f = NULL;
	struct fetch_req req = {0};
	uint8_t buf[1000];
	int r;

	r = fetch_new(&cfg, &f);
	if (r < 0)
		return r;
	r = run(f, &req, "/data", 500, sizeof(buf), buf, sizeof(buf));
	if (r == 0 && memcmp(buf, srv_data + 500, sizeof(buf)) != 0)
		r = -EILSEQ;
	fetch_free(f);
	return r;
}

static void test_tls(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char *key = NULL, *cert = NULL, pin[128], url[64];
	char path[] = "/tmp/test-fetch-ca-XXXXXX";
	const char *bad_pin =
	    "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	struct MHD_Daemon *d;
	struct fetch_config cfg = {.base_url = url};
	struct fetch *f = NULL;
	struct item g, dm;
	struct batch b;
	int fd, r;

	tls_make_cert(&key, &cert, pin, sizeof(pin));
	fd = mkstemp(path);
	check(fd >= 0);
	r = (int)write(fd, cert, strlen(cert));
	check_int(r, ==, (int)strlen(cert));
	close(fd);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
				 MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS,
			     0, NULL, NULL, srv_handler, NULL,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
			     MHD_OPTION_NOTIFY_COMPLETED, srv_completed, NULL,
			     MHD_OPTION_HTTPS_MEM_KEY, key,
			     MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END);
	if (!check(d))
		goto out;
	snprintf(
	    url, sizeof(url), "https://127.0.0.1:%u",
	    (unsigned)MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);

	r = tls_read(url, path, NULL, false);
	check_int(r, ==, 0);
	r = tls_read(url, NULL, NULL, false); /* not in the system store */
	check_int(r, ==, -EPERM);
	r = tls_read(url, NULL, NULL, true);
	check_int(r, ==, 0);
	r = tls_read(url, path, pin, false);
	check_int(r, ==, 0);
	r = tls_read(url, path, bad_pin, false);
	check_int(r, ==, -EPERM);
	r = tls_read(url, NULL, bad_pin, true); /* the pin still counts */
	check_int(r, ==, -EPERM);

	/* Over https the engine waits for a connection that may multiplex;
	 * on HTTP/1.1 that must not hold a request behind a slow one. */
	cfg.cacert = path;
	r = fetch_new(&cfg, &f);
	check_int(r, ==, 0);
	gate_set(5, false);
	batch_init(&b, 2);
	item_set(&g, &b, "/gate/5", 0, 100, FETCH_PRIO_DEMAND);
	item_set(&dm, &b, "/data", 100, 100, FETCH_PRIO_DEMAND);
	fetch_submit(f, &g.req);
	check(gate_wait_for(5, 1));
	fetch_submit(f, &dm.req);
	check(batch_wait(&b, 1, 5));
	check(item_ok(&dm));
	gate_set(5, true);
	check(batch_wait(&b, 0, 5));
	check(item_ok(&g));
	fetch_free(f);
	free(g.buf);
	free(dm.buf);
	batch_fini(&b);
	MHD_stop_daemon(d);
out:
	unlink(path);
	free(key);
	free(cert);
}

struct sunk {
	struct fetch_req req; /* first: the sink gets &s->req */
	uint8_t *buf;
	size_t len;
	size_t fail_after; /* 0: never */
};

static int sink_copy(struct fetch_req *req, const void *data, size_t len)
{
	struct sunk *s = (struct sunk *)req;

	if (s->fail_after && s->len + len > s->fail_after) {
		snprintf(req->errmsg, sizeof(req->errmsg), "sink says no");
		return -EBADMSG;
	}
	if (len > SRV_SIZE - s->len)
		return -EFBIG;
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	return 0;
}

/* What plain servers need: whole URLs on an empty base, a streamed
 * body, redirect targets, lengths, and an error body's own words. */
static void test_plain_helpers(void)
{
	struct fetch_config cfg = {.base_url = "", .allow_plain = true};
	struct sunk sk = {0};
	struct fetch_req req = {0};
	struct fetch *f = NULL;
	char url[128], target[128];
	uint8_t small[10];
	int r;

	check_int(fetch_new(&cfg, &f), ==, 0);
	sk.buf = malloc(SRV_SIZE);
	snprintf(url, sizeof(url), "%s/data", srv_url);
	sk.req.path = url;
	sk.req.sink = sink_copy;
	check_int(fetch_run(f, &sk.req), ==, 0);
	check_int(sk.len, ==, SRV_SIZE);
	check_int(sk.req.got, ==, SRV_SIZE);
	check_int(sk.req.content_length, ==, SRV_SIZE);
	check(memcmp(sk.buf, srv_data, SRV_SIZE) == 0);

	/* A sink's error ends the transfer with it. */
	sk.len = 0;
	sk.fail_after = 100000;
	memset(&sk.req, 0, sizeof(sk.req));
	sk.req.path = url;
	sk.req.sink = sink_copy;
	check_int(fetch_run(f, &sk.req), ==, -EBADMSG);
	check(strcmp(sk.req.errmsg, "sink says no") == 0);

	/* The Content-Range's total. */
	r = run(f, &req, url, 5, sizeof(small), small, sizeof(small));
	check_int(r, ==, 0);
	check_int(req.range_total, ==, SRV_SIZE);

	/* A redirect: its target when asked for, else an error. */
	snprintf(url, sizeof(url), "%s/bad/redirect", srv_url);
	memset(&req, 0, sizeof(req));
	req.redirect = target;
	req.redirect_len = sizeof(target);
	check_int(run(f, &req, url, 0, 0, small, sizeof(small)), ==, -EREMCHG);
	snprintf(url, sizeof(url), "%s/data", srv_url);
	check(strcmp(target, url) == 0);
	snprintf(url, sizeof(url), "%s/bad/redirect", srv_url);
	memset(&req, 0, sizeof(req));
	check_int(run(f, &req, url, 0, 0, small, sizeof(small)), ==, -EIO);

	/* A text error body's words, trimmed to one line. */
	snprintf(url, sizeof(url), "%s/bad/503-text", srv_url);
	memset(&req, 0, sizeof(req));
	check_int(run(f, &req, url, 0, 4, small, sizeof(small)), ==, -EIO);
	check(strcmp(req.errmsg, "HTTP 503: maintenance until 2am") == 0);
	if (strcmp(req.errmsg, "HTTP 503: maintenance until 2am") != 0)
		printf("# errmsg: %s\n", req.errmsg);
	free(sk.buf);
	fetch_free(f);
}

int main(void)
{
	log_init_from_env();
	if (srv_start() < 0) {
		printf("1..0 # SKIP cannot start libmicrohttpd\n");
		return 77;
	}
	TEST(test_range_read(), "range and whole-body reads return the bytes");
	TEST(test_concurrent(), "200 concurrent mixed-priority ranges");
	TEST(test_bad_replies(), "bad replies are errors, never data");
	TEST(test_stall(), "a stalled transfer times out; a deadline bounds "
			   "a request");
	TEST(test_protocols(), "only allowed protocols");
	TEST(test_refused(), "connection refused");
	TEST(test_config(), "bad configuration refused");
	TEST(test_cancel(), "fetch_free cancels queued and in-flight");
	TEST(test_pacing(), "background pacing; demand is not paced");
	TEST(test_upload(), "PUT/POST round trip and request headers");
	TEST(test_token(), "bearer token sent; 401 maps to EACCES");
	TEST(test_demand_first(), "demand goes before background");
	TEST(test_prefetch(), "prefetch: before background, never paced");
	TEST(test_bgshare(), "the rule for giving way to demand");
	TEST(test_give_way(), "background gives way to demand, then goes "
			      "at full rate");
	TEST(test_tls(), "TLS: CA file, pin, insecure; errors map to EPERM");
	TEST(test_plain_helpers(),
	     "whole URLs, streamed bodies, redirects, lengths, error words");
	srv_stop();
	return test_done();
}
