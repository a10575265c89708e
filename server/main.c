/* SPDX-License-Identifier: MIT */
/* vmferry-server: init, serve, import, token, lease, versions, gc,
 * fsck.
 *
 * Owns the process: options, signals, start-up and shutdown order.
 * `serve` blocks SIGINT and SIGTERM before any thread starts, so every
 * libmicrohttpd thread inherits the mask and the main thread alone
 * takes them in sigwait().
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"
#include "qemu.h"
#include "proto.h"
#include "util.h"

#include "audit.h"
#include "auth.h"
#include "cli.h"
#include "cmd_gc.h"
#include "cmd_lease.h"
#include "cmd_token.h"
#include "deadline.h"
#include "fsck.h"
#include "gc.h"
#include "http.h"
#include "http_vnc.h"
#include "vm.h"
#include "import.h"
#include "privs.h"
#include "ratelimit.h"
#include "retention.h"
#include "store.h"
#include "tls.h"
#include "versions.h"

#define PEM_MAX (1u << 20)

static const char usage_main[] =
    "usage: " CLI_PROG " COMMAND [ARGS]\n"
    "\n"
    "  init DIR                 create a server directory\n"
    "  serve DIR [OPTIONS]      serve it over HTTPS\n"
    "  import DIR NAME FILE     add FILE as the next version of NAME\n"
    "  token add|list|revoke    manage access tokens\n"
    "  lease list|break         show or break images' write leases\n"
    "  versions DIR NAME        the version history of an image\n"
    "  gc DIR [OPTIONS]         drop old versions, remove unused blocks\n"
    "  fsck DIR [--repair]      check the store, remove crash leftovers\n"
    "\n"
    "'" CLI_PROG " COMMAND --help' describes each command.\n";

static const char usage_init[] =
    "usage: " CLI_PROG " init DIR\n"
    "\n"
    "Create DIR (mode 0700) with a self-signed certificate (cert.pem,\n"
    "key.pem), an admin token (admin.token, mode 0600) and an empty\n"
    "block store.  Refuses a DIR that exists and is not empty.\n";

static const char usage_serve[] =
    "usage: " CLI_PROG " serve DIR [OPTIONS]\n"
    "\n"
    "  --listen ADDR:PORT   where to listen (default 127.0.0.1:8443;\n"
    "                       port 0 picks a free one; [ADDR]:PORT for IPv6)\n"
    "  --cert FILE          certificate (default DIR/cert.pem)\n"
    "  --key FILE           its private key (default DIR/key.pem)\n"
    "  --threads N          a pool of N threads (default 0: a thread per\n"
    "                       connection)\n"
    "  --ready-file FILE    write the port there once listening\n"
    "  -D, --debug CATS     debug categories (http,store or all)\n"
    "  --verbose            log every request\n"
    "  --lease-seconds N    lease duration unless an image's policy.json\n"
    "                       sets lease_seconds (default 14400: 4 hours)\n"
    "  --keep-versions N    after each commit, drop the image's versions\n"
    "                       beyond the last N unless its policy.json sets\n"
    "                       keep_versions (default 10; blocks stay until\n"
    "                       gc)\n"
    "  --user NAME          drop root for user NAME once the port is\n"
    "                       bound (DIR must belong to NAME)\n"
    "\n"
    "Limits (0 turns off those that say so):\n"
    "  --max-header-size SIZE  request head and buffers per connection\n"
    "                       (default 64K; a larger head gets 431)\n"
    "  --max-body-size SIZE any request body (default 1G; 413)\n"
    "  --request-timeout SECS  a request must arrive whole within SECS\n"
    "                       (default 60; 0: no deadline)...\n"
    "  --min-upload-rate SIZE  ...plus a second per SIZE bytes of body\n"
    "                       (default 16K; 0: SECS whatever the size)\n"
    "  --idle-timeout SECS  close a connection idle that long (default 60)\n"
    "  --max-connections-per-address N\n"
    "                       connections at once from one address\n"
    "                       (default 32)\n"
    "  --auth-fail-max N    after N failed authentications from one\n"
    "                       address within the window, answer it 429\n"
    "                       for the window (default 20; 0: no limit)\n"
    "  --auth-fail-window SECS  (default 60)\n"
    "\n"
    "Stops cleanly on SIGINT or SIGTERM.  DIR/tokens.json is reloaded\n"
    "when it changes.  Writes, leases, pins and refused addresses are\n"
    "appended to DIR/audit.log.  The key and tokens.json must be\n"
    "readable by their owner only (chmod 600).\n";

static const char usage_import[] =
    "usage: " CLI_PROG " import DIR NAME FILE [--block-size SIZE]\n"
    "\n"
    "Store FILE's blocks and commit it as the next version of image\n"
    "NAME (created if new).  SIZE is a power of two from 4K to 4M\n"
    "(default 64K).  Safe while DIR is being served.\n";

/* ---- init ---- */

static int dir_prepare(const char *dir)
{
	_cleanup_free_ char *tokens = cli_dir_file(dir, CLI_TOKENS);
	DIR *d;
	struct dirent *e;
	bool empty = true;

	if (!tokens)
		return log_oom();
	if (access(tokens, F_OK) == 0)
		return log_error_errno(-EEXIST,
				       "%s already holds a vmferry "
				       "server",
				       dir);
	d = opendir(dir);
	if (!d && errno == ENOENT)
		return mkdir(dir, 0700) < 0
			   ? log_error_errno(-errno, "creating %s: %m", dir)
			   : 0;
	if (!d)
		return log_error_errno(-errno, "%s: %m", dir);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = false;
	(void)closedir(d); /* read-only */
	if (!empty)
		return log_error_errno(-ENOTEMPTY,
				       "%s is not empty; refusing "
				       "to make it a server",
				       dir);
	if (chmod(dir, 0700) < 0)
		return log_error_errno(-errno, "chmod %s: %m", dir);
	return 0;
}

static int make_admin_token(const char *dir)
{
	_cleanup_free_ char *tokens = cli_dir_file(dir, CLI_TOKENS);
	_cleanup_free_ char *admin = cli_dir_file(dir, "admin.token");
	struct auth_grants g = {.admin = true};
	uint8_t hash[VMF_HASH_LEN];
	struct auth_db *db = auth_db_new();
	char *tok = NULL, *line = NULL;
	const char *id;
	int r;

	if (!tokens || !admin || !db) {
		auth_db_unref(db);
		return log_oom();
	}
	r = auth_token_new(&tok);
	if (r == 0) {
		auth_token_hash(tok, hash);
		r = auth_db_add(db, "admin", &g, hash, now_wall(), &id);
	}
	if (r == 0 && asprintf(&line, "%s\n", tok) < 0)
		r = -ENOMEM;
	/* The token file first: tokens.json marks the directory done. */
	if (r == 0)
		r = write_file_atomic(admin, line, strlen(line), 0600);
	if (r == 0)
		r = auth_db_save(db, tokens);
	if (tok)
		OPENSSL_cleanse(tok, strlen(tok));
	if (line)
		OPENSSL_cleanse(line, strlen(line));
	free(tok);
	free(line);
	auth_db_unref(db);
	if (r < 0)
		return log_error_errno(r, "writing the admin token: %m");
	return 0;
}

static int cmd_init(int argc, char **argv)
{
	_cleanup_free_ char *cert = NULL, *key = NULL;
	struct store *s = NULL;
	struct versions *v = NULL;
	const char *dir;
	int r;

	r = cli_parse_help(argc, argv, usage_init, "init");
	if (r != 0)
		return r == 1 ? 0 : r;
	if (argc - optind != 1)
		return cli_usage_error("init", "init takes one argument, DIR");
	dir = argv[optind];
	r = dir_prepare(dir);
	if (r < 0)
		return r;
	cert = cli_dir_file(dir, "cert.pem");
	key = cli_dir_file(dir, "key.pem");
	if (!cert || !key)
		return log_oom();
	r = store_open(dir, &s);
	if (r == 0)
		r = versions_open(dir, s, &v);
	versions_free(v);
	store_free(s);
	if (r < 0)
		return log_error_errno(r, "creating the store in %s: %m", dir);
	r = tls_make_self_signed(cert, key);
	if (r < 0)
		return log_error_errno(r, "making the certificate: %m");
	r = make_admin_token(dir);
	if (r < 0)
		return r;
	printf(
	    "initialised %s\n  certificate %s\n  admin token %s/admin.token\n",
	    dir, cert, dir);
	return 0;
}

/* ---- serve ---- */

struct serve_opts {
	const char *listen;
	const char *cert;
	const char *key;
	const char *ready_file;
	unsigned threads;
	bool verbose;
	int64_t lease_seconds;
	uint64_t keep_versions;
	const char *user; /* --user, or NULL */
	struct privs_user pw;
	uint64_t max_head;
	uint64_t max_body;
	uint64_t request_timeout;
	uint64_t min_rate;
	uint64_t idle_timeout;
	uint64_t per_address;
	uint64_t auth_fail_max;
	uint64_t auth_fail_window;
	const char *qemu; /* --qemu: "none" runs no VMs */
	uint64_t vm_grace;
	uint64_t vnc_ticket; /* seconds */
};

/* The long-only options of serve. */
enum {
	OPT_USER = 256,
	OPT_MAX_HEAD,
	OPT_MAX_BODY,
	OPT_REQUEST_TIMEOUT,
	OPT_MIN_RATE,
	OPT_IDLE_TIMEOUT,
	OPT_PER_ADDRESS,
	OPT_AUTH_FAIL_MAX,
	OPT_AUTH_FAIL_WINDOW,
	OPT_QEMU,
	OPT_VM_GRACE,
	OPT_VNC_TICKET,
};

/* A serve option's number within [min, max]: 0 or a usage error. */
static int serve_number(const char *opt, const char *arg, bool size,
			uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t n;
	int r = size ? parse_size(arg, &n) : parse_u64(arg, &n);

	if (r < 0 || n < min || n > max)
		return cli_usage_error(
		    "serve", "%s: want %" PRIu64 " to %" PRIu64 ", not '%s'",
		    opt, min, max, arg);
	*ret = n;
	return 0;
}

/* The limits' options; 1 if c is none of them. */
static int parse_limit(int c, struct serve_opts *o)
{
	switch (c) {
	case OPT_MAX_HEAD:
		return serve_number("--max-header-size", optarg, true, 4096,
				    16u << 20, &o->max_head);
	case OPT_MAX_BODY:
		return serve_number("--max-body-size", optarg, true, 4096,
				    UINT64_MAX >> 1, &o->max_body);
	case OPT_REQUEST_TIMEOUT:
		return serve_number("--request-timeout", optarg, false, 0,
				    86400, &o->request_timeout);
	case OPT_MIN_RATE:
		return serve_number("--min-upload-rate", optarg, true, 0,
				    1ull << 40, &o->min_rate);
	case OPT_IDLE_TIMEOUT:
		return serve_number("--idle-timeout", optarg, false, 1, 86400,
				    &o->idle_timeout);
	case OPT_PER_ADDRESS:
		return serve_number("--max-connections-per-address", optarg,
				    false, 1, 1024, &o->per_address);
	case OPT_AUTH_FAIL_MAX:
		return serve_number("--auth-fail-max", optarg, false, 0,
				    1000000, &o->auth_fail_max);
	case OPT_AUTH_FAIL_WINDOW:
		return serve_number("--auth-fail-window", optarg, false, 1,
				    86400, &o->auth_fail_window);
	default:
		return 1;
	}
}

/* "ADDR:PORT", "[ADDR]:PORT" or ":PORT" into a socket address. */
static int resolve_listen(const char *spec, struct addrinfo **ret)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	char copy[300], *host, *port;

	if (strlen(spec) >= sizeof(copy))
		return -EINVAL;
	memcpy(copy, spec, strlen(spec) + 1);
	port = strrchr(copy, ':');
	if (!port || !port[1])
		return -EINVAL;
	*port++ = '\0';
	host = copy;
	if (host[0] == '[') {
		size_t n = strlen(host);

		if (n < 2 || host[n - 1] != ']')
			return -EINVAL;
		host[n - 1] = '\0';
		host++;
	}
	if (getaddrinfo(*host ? host : NULL, port, &hints, ret) != 0)
		return -EINVAL;
	return 0;
}

static int parse_serve(int argc, char **argv, struct serve_opts *o)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"threads", required_argument, NULL, 't'},
	    {"ready-file", required_argument, NULL, 'r'},
	    {"debug", required_argument, NULL, 'D'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"lease-seconds", required_argument, NULL, 'L'},
	    {"keep-versions", required_argument, NULL, 'K'},
	    {"user", required_argument, NULL, OPT_USER},
	    {"max-header-size", required_argument, NULL, OPT_MAX_HEAD},
	    {"max-body-size", required_argument, NULL, OPT_MAX_BODY},
	    {"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
	    {"min-upload-rate", required_argument, NULL, OPT_MIN_RATE},
	    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
	    {"max-connections-per-address", required_argument, NULL,
	     OPT_PER_ADDRESS},
	    {"auth-fail-max", required_argument, NULL, OPT_AUTH_FAIL_MAX},
	    {"auth-fail-window", required_argument, NULL, OPT_AUTH_FAIL_WINDOW},
	    {"qemu", required_argument, NULL, OPT_QEMU},
	    {"vm-grace", required_argument, NULL, OPT_VM_GRACE},
	    {"vnc-ticket-time", required_argument, NULL, OPT_VNC_TICKET},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t n;
	int c, r;

	while ((c = getopt_long(argc, argv, "D:hv", opts, NULL)) != -1) {
		r = parse_limit(c, o);
		if (r != 1) {
			if (r != 0)
				return r;
			continue;
		}
		switch (c) {
		case OPT_QEMU:
			o->qemu = optarg;
			break;
		case OPT_VM_GRACE:
			if (parse_duration(optarg, &o->vm_grace) < 0 ||
			    o->vm_grace > 3600)
				return cli_usage_error("serve",
						       "--vm-grace: want 0 to "
						       "3600 seconds");
			break;
		case OPT_VNC_TICKET:
			if (parse_duration(optarg, &o->vnc_ticket) < 0 ||
			    o->vnc_ticket < 1 || o->vnc_ticket > 300)
				return cli_usage_error(
				    "serve", "--vnc-ticket-time: want "
					     "1 to 300 seconds");
			break;
		case OPT_USER:
			o->user = optarg;
			if (privs_lookup(optarg, &o->pw) < 0)
				return cli_usage_error(
				    "serve", "--user: no user '%s'", optarg);
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 'c':
			o->cert = optarg;
			break;
		case 'k':
			o->key = optarg;
			break;
		case 't':
			if (parse_u64(optarg, &n) < 0 || n > 1024)
				return cli_usage_error("serve",
						       "--threads: want "
						       "0 to 1024");
			o->threads = (unsigned)n;
			break;
		case 'r':
			o->ready_file = optarg;
			break;
		case 'D':
			if (log_enable_debug(optarg) < 0)
				return cli_usage_error("serve",
						       "-D: unknown "
						       "category in '%s'",
						       optarg);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'L':
			if (parse_u64(optarg, &n) < 0 || n == 0 ||
			    n > 366 * 24 * 3600)
				return cli_usage_error("serve",
						       "--lease-seconds: want "
						       "1 to 31622400");
			o->lease_seconds = (int64_t)n;
			break;
		case 'K':
			if (retention_parse_keep("serve", optarg,
						 &o->keep_versions))
				return 2;
			break;
		case 'h':
			fputs(usage_serve, stdout);
			return 1;
		default:
			return cli_usage_error("serve", "unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("serve",
				       "serve takes one argument, DIR");
	if (!o->cert != !o->key)
		return cli_usage_error("serve", "--cert and --key go together");
	return 0;
}

static void freeaddrinfop(struct addrinfo **ai)
{
	if (*ai)
		freeaddrinfo(*ai);
}

/* Secrets are cleared before they are freed. */
static void free_secretp(char **p)
{
	if (*p) {
		OPENSSL_cleanse(*p, strlen(*p));
		free(*p);
	}
}

/* Wait for SIGINT or SIGTERM (blocked in every thread). */
static void wait_for_stop(const sigset_t *set)
{
	int sig;

	while (sigwait(set, &sig) != 0)
		;
	log_info("signal %d: stopping", sig);
}

/* Bind, open the audit log and become --user: what needs root. */
static int serve_privileged(const char *dir, const struct serve_opts *o,
			    const struct addrinfo *ai, int *ret_fd,
			    struct audit **ret_audit)
{
	int r;

	r = http_listen(ai->ai_addr, ai->ai_addrlen, ret_fd);
	if (r < 0)
		return log_error_errno(r, "cannot listen on %s: %m", o->listen);
	r = audit_open(dir, ret_audit);
	if (r < 0)
		return log_error_errno(r, "opening %s/%s: %m", dir, AUDIT_FILE);
	if (!o->user) {
		if (geteuid() == 0)
			log_info("serving as root; --user NAME would drop root "
				 "once the port is bound");
		return 0;
	}
	if (geteuid() == 0) {
		r = audit_chown(*ret_audit, o->pw.uid, o->pw.gid);
		if (r < 0)
			return log_error_errno(r, "chown %s/%s: %m", dir,
					       AUDIT_FILE);
	}
	r = privs_drop(&o->pw);
	if (r == 0)
		r = privs_check_dir(dir, &o->pw);
	return r;
}

/* The VMs this server may run: with QEMU (--qemu, else on the PATH). */
static int start_vms(const char *dir, const struct serve_opts *o,
		     struct versions *v, struct vms **ret)
{
	struct vms_config vc = {
	    .dir = dir,
	    .lease_seconds = o->lease_seconds,
	    .keep_versions = o->keep_versions,
	    .grace_s = (unsigned)o->vm_grace,
	};
	char qemu[4096];
	int r;

	if (strcmp(o->qemu, "none") != 0) {
		if (qemu_find(o->qemu, qemu, sizeof(qemu)) == 0)
			vc.qemu = qemu;
		else
			log_warn("%s not found: this server runs no VMs "
				 "(--qemu PATH)",
				 o->qemu);
	}
	r = vms_new(v, &vc, ret);
	if (r < 0)
		return log_error_errno(r, "setting up VMs: %m");
	return 0;
}

static int run_server(const char *dir, const struct serve_opts *o,
		      const struct addrinfo *ai, const char *cert_pem,
		      const char *key_pem, const sigset_t *stop)
{
	_cleanup_free_ char *tokens = cli_dir_file(dir, CLI_TOKENS);
	struct http_config cfg = {
	    .listen_fd = -1,
	    .family = ai->ai_family,
	    .cert_pem = cert_pem,
	    .key_pem = key_pem,
	    .threads = o->threads,
	    .verbose = o->verbose,
	    .lease_seconds = o->lease_seconds,
	    .keep_versions = o->keep_versions,
	    .max_head = (size_t)o->max_head,
	    .max_body = o->max_body,
	    .request_timeout = (unsigned)o->request_timeout,
	    .min_rate = o->min_rate,
	    .idle_timeout = (unsigned)o->idle_timeout,
	    .per_address = (unsigned)o->per_address,
	    .auth_fail_max = (unsigned)o->auth_fail_max,
	    .vnc_ticket_s = (unsigned)o->vnc_ticket,
	    .auth_fail_window = (unsigned)o->auth_fail_window,
	};
	struct audit *audit = NULL;
	struct store *s = NULL;
	struct versions *v = NULL;
	struct auth_watch *w = NULL;
	struct http_server *h = NULL;
	char port[16];
	int r;

	if (!tokens)
		return log_oom();
	r = serve_privileged(dir, o, ai, &cfg.listen_fd, &audit);
	if (r < 0)
		goto out;
	cfg.audit = audit;
	r = store_open(dir, &s);
	if (r == 0)
		r = versions_open(dir, s, &v);
	if (r < 0) {
		log_error_errno(r, "opening the store in %s: %m", dir);
		goto out;
	}
	r = auth_watch_new(tokens, &w);
	if (r < 0) {
		log_error_errno(r, "loading %s: %m", tokens);
		goto out;
	}
	r = start_vms(dir, o, v, &cfg.vms);
	if (r < 0)
		goto out;
	r = http_start(&cfg, s, v, w, &h);
	cfg.listen_fd = -1; /* taken over */
	if (r < 0) {
		log_error("cannot serve on %s", o->listen);
		goto out;
	}
	snprintf(port, sizeof(port), "%u\n", (unsigned)http_port(h));
	log_info("serving %s on https://%s (port %u)", dir, o->listen,
		 (unsigned)http_port(h));
	if (o->ready_file) {
		r = write_file_atomic(o->ready_file, port, strlen(port), 0644);
		if (r < 0) {
			log_error_errno(r, "writing %s: %m", o->ready_file);
			goto out;
		}
	}
	wait_for_stop(stop);
out:
	http_stop(h);
	vms_free(cfg.vms); /* after the server: no request uses them */
	closep(&cfg.listen_fd);
	auth_watch_free(w);
	versions_free(v);
	store_free(s);
	audit_close(audit);
	return r;
}

static int cmd_serve(int argc, char **argv)
{
	struct serve_opts o = {
	    .listen = "127.0.0.1:8443",
	    .lease_seconds = VMF_LEASE_SECONDS_DEFAULT,
	    .keep_versions = RETENTION_KEEP_DEFAULT,
	    .max_head = HTTP_MAX_HEAD_DEFAULT,
	    .max_body = HTTP_MAX_BODY_DEFAULT,
	    .request_timeout = DEADLINE_TIMEOUT_DEFAULT,
	    .min_rate = DEADLINE_MIN_RATE_DEFAULT,
	    .idle_timeout = HTTP_IDLE_DEFAULT,
	    .per_address = HTTP_PER_ADDRESS_DEFAULT,
	    .auth_fail_max = RATELIMIT_MAX_DEFAULT,
	    .auth_fail_window = RATELIMIT_WINDOW_DEFAULT,
	    .qemu = QEMU_DEFAULT_BINARY,
	    .vm_grace = 30,
	    .vnc_ticket = HTTP_VNC_TICKET_S,
	};
	_cleanup_free_ char *cert_path = NULL, *key_path = NULL;
	_cleanup_free_ char *tokens = NULL;
	_cleanup_free_ char *cert = NULL;
	_cleanup_(free_secretp) char *key = NULL;
	_cleanup_(freeaddrinfop) struct addrinfo *ai = NULL;
	sigset_t stop;
	const char *dir;
	int r;

	r = parse_serve(argc, argv, &o);
	if (r != 0)
		return r == 1 ? 0 : r;
	dir = argv[optind];
	if (resolve_listen(o.listen, &ai) < 0)
		return cli_usage_error("serve",
				       "--listen: want ADDR:PORT, not "
				       "'%s'",
				       o.listen);
	r = cli_check_server_dir(dir);
	if (r < 0)
		return r;
	cert_path = o.cert ? strdup(o.cert) : cli_dir_file(dir, "cert.pem");
	key_path = o.key ? strdup(o.key) : cli_dir_file(dir, "key.pem");
	tokens = cli_dir_file(dir, CLI_TOKENS);
	if (!cert_path || !key_path || !tokens)
		return log_oom();
	r = read_file(cert_path, PEM_MAX, &cert, NULL);
	if (r < 0)
		return log_error_errno(r, "reading %s: %m", cert_path);
	/* Secrets only their owner may read: refused otherwise. */
	r = privs_read_secret(key_path, PEM_MAX, &key);
	if (r == 0)
		r = privs_read_secret(tokens, 0, NULL);
	if (r < 0)
		return r;
	/* A shell without job control starts background jobs with SIGINT
	 * ignored, and an ignored signal never reaches sigwait(). */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	/* Blocked before any thread exists, so that all of them inherit
	 * the mask and only sigwait() takes these signals. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0)
		abort();
	signal(SIGPIPE, SIG_IGN);
	return run_server(dir, &o, ai, cert, key, &stop);
}

/* ---- import ---- */

static int cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"block-size", required_argument, NULL, 'b'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t bs = VMF_BLOCK_SIZE_DEFAULT;
	struct store *s = NULL;
	struct versions *v = NULL;
	struct import_result res;
	const char *dir, *name, *file;
	char size[32];
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_import, stdout);
			return 0;
		}
		if (c != 'b')
			return cli_usage_error("import", "unknown option");
		if (parse_size(optarg, &bs) < 0 || bs < VMF_BLOCK_SIZE_MIN ||
		    bs > VMF_BLOCK_SIZE_MAX || (bs & (bs - 1)))
			return cli_usage_error("import", "--block-size: want a "
							 "power of two from 4K "
							 "to 4M");
	}
	if (argc - optind != 3)
		return cli_usage_error("import", "import takes DIR NAME FILE");
	dir = argv[optind];
	name = argv[optind + 1];
	file = argv[optind + 2];
	if (!image_name_valid(name))
		return cli_usage_error("import",
				       "invalid image name '%s' (want "
				       "[A-Za-z0-9._-], not starting "
				       "with '.', at most %d)",
				       name, VMF_NAME_MAX);
	r = cli_check_server_dir(dir);
	if (r < 0)
		return r;
	r = store_open(dir, &s);
	if (r == 0)
		r = versions_open(dir, s, &v);
	if (r == 0)
		r = import_file(s, v, name, file, (uint32_t)bs, true, &res);
	versions_free(v);
	store_free(s);
	if (r < 0)
		return log_error_errno(r, "importing %s as %s: %m", file, name);
	audit_cli(dir, &(struct audit_entry){
			   .action = "import",
			   .image = name,
			   .version = res.version,
			   .extra = json_pack("{s:I}", "new_blocks",
					      (json_int_t)res.new_blocks),
		       });
	format_bytes(res.size, size, sizeof(size));
	printf("imported %s version %" PRIu64 ": %" PRIu64
	       " bytes (%s), %" PRIu64 " blocks: %" PRIu64 " new, %" PRIu64
	       " zero, %" PRIu64 " already present\n",
	       name, res.version, res.size, size, res.nblocks, res.new_blocks,
	       res.zero_blocks, res.present_blocks);
	return 0;
}

/* ---- fsck ---- */

static const char usage_fsck[] =
    "usage: " CLI_PROG " fsck DIR [--repair] [--grace SECS]\n"
    "\n"
    "Check that every committed version of every image is whole: its\n"
    "manifest parses, and each block it names exists and hashes to its\n"
    "name.  Also checks current, lease.json, pins.json and policy.json,\n"
    "and counts leftovers: manifests above current (crashed commits),\n"
    "DIR/tmp files, blocks no committed version names.  Exit 0 if\n"
    "consistent, 1 if damage or crashed commits were found.  Safe while\n"
    "DIR is served.\n"
    "\n"
    "  --repair      remove the leftovers, never a file a committed\n"
    "                version needs (a damaged block is reported, kept)\n"
    "  --grace SECS  never remove a block or DIR/tmp file modified in\n"
    "                the last SECS seconds (default 3600, as gc)\n";

static int cmd_fsck(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"repair", no_argument, NULL, 'r'},
	    {"grace", required_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct fsck_options o = {.grace = GC_GRACE_DEFAULT};
	struct fsck_result res = {0};
	struct store *s = NULL;
	struct versions *v = NULL;
	char b1[32], b2[32];
	const char *dir;
	uint64_t n;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.repair = true;
			break;
		case 'g':
			if (parse_u64(optarg, &n) < 0 || n > INT32_MAX)
				return cli_usage_error(
				    "fsck", "--grace: want seconds, 0 or more");
			o.grace = (int64_t)n;
			break;
		case 'h':
			fputs(usage_fsck, stdout);
			return 0;
		default:
			return cli_usage_error("fsck", "unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("fsck", "fsck takes one argument, DIR");
	dir = argv[optind];
	r = cli_open_store(dir, &s, &v);
	if (r < 0)
		return r;
	r = fsck_run(s, v, &o, &res); /* logs its errors */
	versions_free(v);
	store_free(s);
	if (r < 0)
		return r;
	printf("%" PRIu64 " images, %" PRIu64 " versions: %" PRIu64
	       " blocks verified, %" PRIu64 " missing, %" PRIu64
	       " corrupt, %" PRIu64 " bad files\n",
	       res.images, res.versions, res.blocks_verified, res.missing,
	       res.corrupt, res.bad_files);
	format_bytes(res.unref_bytes, b1, sizeof(b1));
	format_bytes(res.tmp_bytes, b2, sizeof(b2));
	printf("leftovers: %" PRIu64 " manifests above current, %" PRIu64
	       " unreferenced blocks (%" PRIu64 " bytes, %s; %" PRIu64
	       " within the grace period), %" PRIu64 " tmp files (%" PRIu64
	       " bytes, %s)\n",
	       res.above_current, res.unref_blocks, res.unref_bytes, b1,
	       res.unref_young, res.tmp_files, res.tmp_bytes, b2);
	if (o.repair)
		printf("repair: removed %" PRIu64 " manifests, %" PRIu64
		       " blocks (%" PRIu64 " bytes), %" PRIu64
		       " tmp files (%" PRIu64 " bytes)\n",
		       res.above_removed, res.unref_removed,
		       res.unref_removed_bytes, res.tmp_removed,
		       res.tmp_removed_bytes);
	if (fsck_problems(&res)) {
		printf("%s: problems found\n", dir);
		return 1;
	}
	printf("%s: consistent\n", dir);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
	    {"init", cmd_init},	    {"serve", cmd_serve},
	    {"import", cmd_import}, {"token", cmd_token},
	    {"lease", cmd_lease},   {"versions", cmd_versions},
	    {"gc", cmd_gc},	    {"fsck", cmd_fsck},
	};
	int r;

	log_set_ident(CLI_PROG);
	log_init_from_env();
	if (argc < 2)
		return cli_usage_error("", "missing command");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_main, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name) != 0)
			continue;
		r = cmds[i].fn(argc - 1, argv + 1);
		return r < 0 ? 1 : r;
	}
	return cli_usage_error("", "unknown command '%s'", argv[1]);
}
