/* SPDX-License-Identifier: MIT */
/* `vmferry vnc NAME|URL`: the display of the VM the server runs for an
 * image (`vmferry run --remote`), offered to a VNC viewer here.
 *
 * Listens on a Unix socket (or a loopback TCP port); each viewer that
 * connects gets its own WebSocket to GET .../vnc (docs/protocol.md,
 * "Graphical console") over the server's TLS endpoint, and a thread
 * relaying between the two (ws_relay.h).  libcurl (7.88) has no
 * WebSocket support, so the connection is libcurl's CONNECT_ONLY one:
 * its TLS and the same certificate checks as every other request
 * (tool_curl_tls()), with the HTTP upgrade written here.  The main
 * thread accepts until SIGINT/SIGTERM; the relays end with the process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"
#include "thread.h"
#include "util.h"
#include "ws.h"
#include "ws_relay.h"

#include "../fusefs/crypto.h"
#include "commands.h"
#include "run.h"

#define VNC_HEAD_MAX  16384
#define VNC_WAIT_MS   10000	  /* for the server's answer */
#define VNC_FRAME_MAX (16u << 20) /* the server's frames: updates */

enum { OPT_SERVER = 256, OPT_SOCKET, OPT_LISTEN, OPT_ONCE };

struct vnc_opts {
	struct run_opts ro;
	const char *socket_path;
	const char *listen; /* "127.0.0.1:PORT" */
	bool once;
	char *token;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmferry vnc [OPTIONS] NAME|URL\n"
	    "\n"
	    "Offer the display of the VM the server runs for an image\n"
	    "(`vmferry run --remote`) to a VNC viewer on this machine.\n"
	    "Each viewer that connects gets its own WebSocket through the\n"
	    "server's TLS endpoint; the server opens no port for VNC.\n"
	    "Prints where it listens, then serves until Ctrl-C.\n"
	    "\n"
	    "      --socket PATH       listen on this Unix socket (default:\n"
	    "                          $XDG_RUNTIME_DIR/vmferry-NAME.vnc,\n"
	    "                          else /tmp/vmferry-UID/NAME.vnc)\n"
	    "      --listen 127.0.0.1:PORT\n"
	    "                          listen on a loopback TCP port instead\n"
	    "                          (PORT 0 picks one); never another "
	    "address\n"
	    "      --once              serve one viewer, then exit\n"
	    "      --server URL        https://HOST:PORT (default: "
	    "$VMFERRY_SERVER)\n"
	    "      --token-file FILE, --cacert FILE, --pin-sha256 B64,\n"
	    "      --insecure          as for `vmferry mount`\n"
	    "\n"
	    "For example: vmferry vnc web01 --listen 127.0.0.1:5901, then\n"
	    "a viewer on 127.0.0.1::5901 (or `vncviewer\n"
	    "/run/user/1000/vmferry-web01.vnc` for a socket).\n");
}

static int vnc_opt(int c, const char *arg, void *opaque)
{
	struct vnc_opts *v = opaque;

	switch (c) {
	case OPT_SERVER:
		v->ro.server = arg;
		return 0;
	case OPT_SOCKET:
		v->socket_path = arg;
		return 0;
	case OPT_LISTEN:
		v->listen = arg;
		return 0;
	default:
		v->once = true;
		return 0;
	}
}

/* The tunnel's libcurl connection as a ws_conn. */
static ssize_t curl_io(CURLcode rc, size_t n)
{
	if (rc == CURLE_AGAIN)
		return -EAGAIN;
	return rc == CURLE_OK ? (ssize_t)n : -EIO;
}

static ssize_t curl_recv(void *opaque, void *buf, size_t len)
{
	size_t n = 0;
	CURLcode rc = curl_easy_recv(opaque, buf, len, &n);

	return curl_io(rc, n);
}

static ssize_t curl_send(void *opaque, const void *buf, size_t len)
{
	size_t n = 0;
	CURLcode rc = curl_easy_send(opaque, buf, len, &n);

	return curl_io(rc, n);
}

/* The server's message in an error answer's JSON body, or the status
 * line. */
static void answer_why(const char *head, const char *body, char *why)
{
	const char *e = strstr(body, "\"error\":\"");
	size_t n;

	if (e) {
		e += 9;
		n = strcspn(e, "\"");
		snprintf(why, 256, "%.*s", (int)n, e);
		return;
	}
	n = strcspn(head, "\r\n");
	snprintf(why, 256, "%.*s", (int)n, head);
}

/* Read the answer's head (and what follows it) into buf.  Returns its
 * length with *ret_head_len set, or -errno. */
static int read_answer(struct ws_conn *c, char *buf, size_t cap,
		       size_t *ret_head_len)
{
	size_t len = 0;
	char *end;

	for (int waited = 0; waited < VNC_WAIT_MS;) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		ssize_t n = c->recv(c->opaque, buf + len, cap - 1 - len);

		if (n == -EAGAIN) {
			(void)poll(&pfd, 1, 100);
			waited += 100;
			continue;
		}
		if (n <= 0)
			break; /* the server closed: what we have */
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end && !*ret_head_len)
			*ret_head_len = (size_t)(end + 4 - buf);
		/* A 101 is read to its head; an error also to its body,
		 * which the server sends at once. */
		if (*ret_head_len && strncmp(buf + 9, "101", 3) == 0)
			return (int)len;
		if (len == cap - 1)
			break;
	}
	buf[len] = '\0';
	if (!*ret_head_len)
		return -EPROTO;
	return (int)len;
}

/* The value of header name in head, or NULL; its length in *ret_len. */
static const char *head_value(const char *head, const char *name,
			      size_t *ret_len)
{
	size_t n = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p && p[2];
	     p = strstr(p + 2, "\r\n")) {
		const char *v = p + 2;

		if (strncasecmp(v, name, n) != 0 || v[n] != ':')
			continue;
		v += n + 1;
		while (*v == ' ')
			v++;
		*ret_len = strcspn(v, "\r\n");
		return v;
	}
	return NULL;
}

/* Open the WebSocket and relay viewer through it.  0 or -errno (said). */
static int tunnel(struct vnc_opts *v, int viewer)
{
	char key[WS_KEY_LEN + 1], accept[WS_ACCEPT_LEN + 1], why[256] = "";
	char url[700], err[CURL_ERROR_SIZE] = "";
	_cleanup_free_ char *req = NULL, *buf = NULL;
	const char *host = v->ro.u.base + strlen("https://"), *got;
	struct ws_conn c = {.client = true};
	size_t head_len = 0, n;
	curl_socket_t sock;
	CURL *e = NULL;
	int r, len;

	if (ws_new_key(key) < 0 || ws_accept(key, accept) < 0)
		return -EIO;
	buf = malloc(VNC_HEAD_MAX);
	e = curl_easy_init();
	if (!buf || !e ||
	    asprintf(&req,
		     "GET " VMF_PATH_IMAGES "/%s/vnc HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: " WS_VERSION "\r\n"
		     "Sec-WebSocket-Protocol: " WS_SUBPROTOCOL "\r\n"
		     "Authorization: Bearer %s\r\n"
		     "User-Agent: vmferry\r\n\r\n",
		     v->ro.u.name, host, key, v->token) < 0) {
		req = NULL;
		curl_easy_cleanup(e);
		return log_error_errno(-ENOMEM, "the VNC tunnel: %m");
	}
	snprintf(url, sizeof(url), "%s/", v->ro.u.base);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
	tool_curl_tls(&v->ro.o, e);
	r = curl_easy_perform(e) == CURLE_OK &&
		    curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &sock) ==
			CURLE_OK
		? 0
		: -ECONNREFUSED;
	if (r < 0) {
		log_error("%s: connecting to the server: %s", v->ro.url,
			  *err ? err : "failed");
		goto out;
	}
	c.fd = (int)sock;
	c.recv = curl_recv;
	c.send = curl_send;
	c.opaque = e;
	r = ws_send_all(&c, req, strlen(req));
	crypto_cleanse(req, strlen(req));
	len = r < 0 ? r : read_answer(&c, buf, VNC_HEAD_MAX, &head_len);
	if (len < 0) {
		r = len;
		log_error("%s: no answer from the server for the display: %s",
			  v->ro.url, strerror(-r));
		goto out;
	}
	if (strncmp(buf, "HTTP/1.1 101", 12) != 0) {
		buf[head_len - 1] = '\0';
		answer_why(buf, buf + head_len, why);
		log_error("%s: the server refused the display: %s", v->ro.url,
			  why);
		r = -EACCES;
		goto out;
	}
	got = head_value(buf, "Sec-WebSocket-Accept", &n);
	if (!got || n != WS_ACCEPT_LEN || memcmp(got, accept, n) != 0) {
		log_error("%s: the server's WebSocket answer is not valid",
			  v->ro.url);
		r = -EPROTO;
		goto out;
	}
	log_info("%s: a viewer is connected to the display", v->ro.u.name);
	r = ws_relay(&c, viewer, buf + head_len, (size_t)len - head_len,
		     VNC_FRAME_MAX);
	if (r < 0)
		log_warn("%s: the display's connection ended: %s", v->ro.u.name,
			 strerror(-r));
	else
		log_info("%s: a viewer left the display", v->ro.u.name);
out:
	curl_easy_cleanup(e);
	return r;
}

struct viewer {
	struct vnc_opts *v;
	int fd;
};

static void *viewer_main(void *opaque)
{
	struct viewer *w = opaque;

	(void)tunnel(w->v, w->fd); /* said there */
	close(w->fd);
	free(w);
	return NULL;
}

/* The default socket path for name into buf. */
static int default_socket(const char *name, char *buf, size_t len)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	char dir[64];

	if (rt && *rt) {
		snprintf(buf, len, "%s/vmferry-%s.vnc", rt, name);
		return 0;
	}
	snprintf(dir, sizeof(dir), "/tmp/vmferry-%u", (unsigned)getuid());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(buf, len, "%s/%s.vnc", dir, name);
	return 0;
}

/* The listening socket, said on stdout.  fd or -errno (said). */
static int listen_on(struct vnc_opts *v, char *path, size_t path_len)
{
	_cleanup_close_ int fd = -1;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t slen = sizeof(sin);
	uint64_t port;
	char *colon;
	int r;

	if (v->listen) {
		colon = strrchr(v->listen, ':');
		if (!colon || strncmp(v->listen, "127.0.0.1:", 10) != 0 ||
		    parse_u64(colon + 1, &port) < 0 || port > 65535) {
			log_error("--listen %s: want 127.0.0.1:PORT (loopback "
				  "only)",
				  v->listen);
			return -EINVAL;
		}
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin.sin_port = htons((uint16_t)port);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
		    listen(fd, 8) ||
		    getsockname(fd, (struct sockaddr *)&sin, &slen))
			return log_error_errno(-errno, "--listen %s: %m",
					       v->listen);
		printf("%s: display on 127.0.0.1:%u\n", v->ro.u.name,
		       ntohs(sin.sin_port));
		*path = '\0';
	} else {
		if (v->socket_path)
			snprintf(path, path_len, "%s", v->socket_path);
		else if ((r = default_socket(v->ro.u.name, path, path_len)))
			return log_error_errno(r, "a directory for the "
						  "socket: %m");
		if (strlen(path) >= sizeof(sun.sun_path)) {
			log_error("%s: too long for a socket", path);
			return -ENAMETOOLONG;
		}
		memcpy(sun.sun_path, path, strlen(path) + 1);
		(void)unlink(path); /* a previous run's */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
		    chmod(path, 0600) || listen(fd, 8))
			return log_error_errno(-errno, "%s: %m", path);
		printf("%s: display on unix:%s\n", v->ro.u.name, path);
	}
	fflush(stdout);
	return steal_fd(&fd);
}

static int serve(struct vnc_opts *v, int lfd)
{
	for (;;) {
		struct pollfd pfd = {.fd = lfd, .events = POLLIN};
		struct viewer *w;
		pthread_t t;
		int fd;

		if (stop)
			return 0;
		if (poll(&pfd, 1, 250) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (v->once) {
			int r = tunnel(v, fd);

			close(fd);
			return r < 0 ? 1 : 0;
		}
		w = malloc(sizeof(*w));
		if (w) {
			w->v = v;
			w->fd = fd;
		}
		if (!w || thread_start(&t, viewer_main, w, "vnc") < 0) {
			log_error("%s: no thread for a viewer", v->ro.u.name);
			close(fd);
			free(w);
			continue;
		}
		pthread_detach(t);
	}
}

int cmd_vnc(int argc, char **argv)
{
	static const struct option own[] = {
	    {"server", required_argument, NULL, OPT_SERVER},
	    {"socket", required_argument, NULL, OPT_SOCKET},
	    {"listen", required_argument, NULL, OPT_LISTEN},
	    {"once", no_argument, NULL, OPT_ONCE},
	    {NULL, 0, NULL, 0},
	};
	struct vnc_opts v = {.ro.o = {.want = TOOL_OPT_SERVER}};
	struct sigaction sa = {.sa_handler = on_signal};
	char url[1100], path[256] = "";
	int r, lfd, status;

	r = tool_parse(argc, argv, &v.ro.o, own, vnc_opt, &v, usage);
	if (r >= 0)
		return r;
	if (argc - optind != 1 || (v.socket_path && v.listen)) {
		usage(stderr);
		return 2;
	}
	r = run_resolve(&v.ro, argv[optind], url, sizeof(url));
	if (r)
		return r;
	if (tool_read_token(&v.ro.o, &v.token) < 0)
		return 1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(&v, path, sizeof(path));
	status = lfd < 0 ? 1 : serve(&v, lfd);
	if (lfd >= 0)
		close(lfd);
	if (*path)
		(void)unlink(path);
	crypto_cleanse(v.token, strlen(v.token));
	free(v.token);
	return status;
}
