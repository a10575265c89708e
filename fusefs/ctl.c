/* SPDX-License-Identifier: MIT */
/* Control socket.  See ctl.h.
 *
 * Owns the listening socket and its thread.  The thread polls the socket
 * and a stop pipe; each connection is served to completion (commands are
 * short) with a receive timeout so a silent client cannot wedge it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"
#include "thread.h"
#include "proto.h"

#include "ctl.h"

struct ctl {
	int fd;		  /* listening socket */
	int stop_pipe[2]; /* write end closed to stop */
	char *path;
	ctl_handler_fn *fn;
	void *opaque;
	pthread_t thread;
};

int ctl_runtime_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	int n;

	if (xdg && *xdg)
		n = snprintf(buf, len, "%s/vmferry", xdg);
	else
		n = snprintf(buf, len, "/tmp/vmferry-%u", (unsigned)getuid());
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(buf, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 0077))
		return -EPERM;
	return 0;
}

int ctl_socket_path(char *buf, size_t len)
{
	char dir[256];
	int n, r = ctl_runtime_dir(dir, sizeof(dir));

	if (r < 0)
		return r;
	n = snprintf(buf, len, "%s/mount-%ld.sock", dir, (long)getpid());
	if (n < 0 || (size_t)n >= len ||
	    (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

static int sock_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

static void serve_one(struct ctl *c, int fd)
{
	struct timeval tv = {.tv_sec = 5};
	char cmd[256];
	_cleanup_free_ char *reply = NULL;
	ssize_t n;
	int r;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, cmd, sizeof(cmd) - 1, 0);
	if (n <= 0)
		return;
	cmd[n] = '\0';
	cmd[strcspn(cmd, "\r\n")] = '\0';
	r = c->fn(c->opaque, cmd, &reply);
	if (r < 0) {
		free(reply);
		reply = NULL;
		if (asprintf(&reply, "{\"error\": \"%s\"}\n", strerror(-r)) < 0)
			return;
	}
	(void)full_write(fd, reply, strlen(reply)); /* client may be gone */
}

static void *ctl_thread(void *arg)
{
	struct ctl *c = arg;

	for (;;) {
		struct pollfd p[2] = {
		    {.fd = c->fd, .events = POLLIN},
		    {.fd = c->stop_pipe[0], .events = POLLIN}};
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_one(c, fd);
		close(fd);
	}
	return NULL;
}

int ctl_start(const char *path, ctl_handler_fn *fn, void *opaque,
	      struct ctl **ret)
{
	struct ctl *c = calloc(1, sizeof(*c));
	struct sockaddr_un sa;
	int r;

	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->stop_pipe[0] = c->stop_pipe[1] = -1;
	c->fn = fn;
	c->opaque = opaque;
	c->path = strdup(path);
	r = c->path ? sock_addr(path, &sa) : -ENOMEM;
	if (r < 0)
		goto fail;
	(void)unlink(path); /* a stale socket from a dead mount */
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(c->fd, 8) < 0 || pipe2(c->stop_pipe, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	r = thread_start(&c->thread, ctl_thread, c, "vmf-control");
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	if (c->fd >= 0) {
		close(c->fd);
		(void)unlink(path);
	}
	if (c->stop_pipe[0] >= 0) {
		close(c->stop_pipe[0]);
		close(c->stop_pipe[1]);
	}
	free(c->path);
	free(c);
	return r;
}

void ctl_stop(struct ctl *c)
{
	if (!c)
		return;
	close(c->stop_pipe[1]);
	pthread_join(c->thread, NULL);
	close(c->stop_pipe[0]);
	close(c->fd);
	(void)unlink(c->path); /* gone already is fine */
	free(c->path);
	free(c);
}

int ctl_find(const char *mountpoint, char *buf, size_t len)
{
	ssize_t n = getxattr(mountpoint, CTL_XATTR, buf, len - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

int ctl_request(const char *path, const char *cmd, char **ret_reply)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct sockaddr_un sa;
	int r;

	r = sock_addr(path, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	/* One line in one send: the server reads a single message. */
	if (asprintf(&buf, "%s\n", cmd) < 0)
		return -ENOMEM;
	r = full_write(fd, buf, strlen(buf));
	if (r < 0)
		return r;
	shutdown(fd, SHUT_WR);
	/* The reply: one JSON object, bounded like any JSON we accept. */
	return read_fd(fd, VMF_JSON_MAX, ret_reply, NULL);
}
