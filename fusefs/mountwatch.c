/* SPDX-License-Identifier: MIT */
/* The mount watch (see mountwatch.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "cleanup.h"
#include "mutex.h"
#include "thread.h"
#include "util.h"

#include "mountwatch.h"

#define MOUNTINFO "/proc/self/mountinfo"
/* How often in_use() is asked again while the mount is gone but busy. */
#define MOUNTWATCH_BUSY_MS 250

struct mountwatch {
	struct mountwatch_config cfg; /* cfg.mountpoint is not kept */
	long id;		      /* the watched mount's ID */
	int info_fd;		      /* MOUNTINFO, polled */
	int stop_fd;		      /* eventfd: mountwatch_stop() */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	bool stop; /* under lock */
};

/* The next space-separated field of a mountinfo line at *p (advanced
 * past it): its start, and its length in *ret_len. */
static const char *field(const char **p, size_t *ret_len)
{
	const char *s = *p;

	while (*s == ' ')
		s++;
	*ret_len = strcspn(s, " \n");
	*p = s + *ret_len;
	return s;
}

/* Whether the escaped mount point f (len bytes; the kernel writes space,
 * tab, newline and backslash as \ooo) is path. */
static bool mount_point_is(const char *f, size_t len, const char *path)
{
	size_t i = 0;

	while (i < len) {
		int c = (unsigned char)f[i];

		if (c == '\\' && len - i >= 4 && f[i + 1] >= '0' &&
		    f[i + 1] <= '3' && f[i + 2] >= '0' && f[i + 2] <= '7' &&
		    f[i + 3] >= '0' && f[i + 3] <= '7') {
			c = (f[i + 1] - '0') * 64 + (f[i + 2] - '0') * 8 +
			    (f[i + 3] - '0');
			i += 4;
		} else {
			i++;
		}
		if (*path++ != c)
			return false;
	}
	return *path == '\0';
}

/* Calls fn for each line of text with its mount ID, its mount point
 * field and whether its file system type begins with "fuse"; stops when
 * fn returns true. */
static void each_mount(const char *text,
		       bool (*fn)(long id, const char *mp, size_t mp_len,
				  bool fuse, void *arg),
		       void *arg)
{
	for (const char *line = text; *line;) {
		const char *p = line, *mp, *sep;
		size_t len, mp_len;
		char *end;
		long id = strtol(p, &end, 10);
		bool ok = end != p;

		/* ID, parent ID, major:minor, root, mount point. */
		for (int i = 0; ok && i < 4; i++)
			(void)field(&p, &len);
		mp = field(&p, &mp_len);
		/* Optional fields end at " - "; the type follows. */
		sep = strstr(p, " - ");
		line = strchr(line, '\n');
		line = line ? line + 1 : p + strlen(p);
		if (!ok || mp_len == 0 || !sep || sep > line)
			continue;
		if (fn(id, mp, mp_len, strncmp(sep + 3, "fuse", 4) == 0, arg))
			return;
	}
}

struct find_arg {
	const char *path;
	long id;
	bool found;
};

static bool find_one(long id, const char *mp, size_t mp_len, bool fuse,
		     void *arg)
{
	struct find_arg *a = arg;

	if (fuse && mount_point_is(mp, mp_len, a->path)) {
		a->id = id; /* the last one is the newest, on top */
		a->found = true;
	}
	return false;
}

int mountinfo_find(const char *text, const char *path, long *ret_id)
{
	struct find_arg a = {.path = path};

	each_mount(text, find_one, &a);
	if (!a.found)
		return -ENOENT;
	*ret_id = a.id;
	return 0;
}

static bool has_one(long id, const char *mp, size_t mp_len, bool fuse,
		    void *arg)
{
	struct find_arg *a = arg;

	(void)mp;
	(void)mp_len;
	(void)fuse;
	if (id == a->id)
		a->found = true;
	return a->found;
}

bool mountinfo_has(const char *text, long id)
{
	struct find_arg a = {.id = id};

	each_mount(text, has_one, &a);
	return a.found;
}

/* MOUNTINFO's contents through fd, from the start (reading it is also
 * what re-arms the kernel's change flag for fd).  Returns a string to
 * free, or NULL with errno set. */
static char *read_mountinfo(int fd)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, room = 0;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return NULL;
	for (;;) {
		ssize_t n;

		if (room - len < 4096) {
			char *b = realloc(buf, room + 65536);

			if (!b)
				return NULL;
			buf = b;
			room += 65536;
		}
		n = read(fd, buf + len, room - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return NULL;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return steal_ptr(&buf);
}

/* Whether the watched mount is still in the table.  An unreadable table
 * says nothing: the mount is taken to be there. */
static bool still_mounted(struct mountwatch *w)
{
	_cleanup_free_ char *text = read_mountinfo(w->info_fd);

	return !text || mountinfo_has(text, w->id);
}

/* Sleep until the table changes, the stop or ms pass (-1: no limit).
 * Returns false when stopped. */
static bool wait_event(struct mountwatch *w, int ms)
{
	struct pollfd p[2] = {{.fd = w->info_fd, .events = POLLPRI},
			      {.fd = w->stop_fd, .events = POLLIN}};

	if (poll(p, 2, ms) < 0 && errno != EINTR)
		(void)usleep(100000); /* nothing to do but not spin */
	return !(p[1].revents & POLLIN);
}

static void *watch_thread(void *arg)
{
	struct mountwatch *w = arg;
	uint64_t idle_since = 0;

	while (still_mounted(w))
		if (!wait_event(w, -1))
			return NULL;
	/* Gone from here: once nothing is open and the grace has passed,
	 * the connection is someone else's copy. */
	for (;;) {
		uint64_t now = now_ns();

		if (w->cfg.in_use(w->cfg.opaque))
			idle_since = 0;
		else if (!idle_since)
			idle_since = now;
		if (idle_since && now - idle_since >= w->cfg.grace_ns)
			break;
		if (!wait_event(w, MOUNTWATCH_BUSY_MS))
			return NULL;
	}
	mutex_lock(&w->lock);
	if (!w->stop)
		w->cfg.gone(w->cfg.opaque);
	mutex_unlock(&w->lock);
	return NULL;
}

int mountwatch_start(const struct mountwatch_config *cfg,
		     struct mountwatch **ret)
{
	_cleanup_free_ char *text = NULL;
	struct mountwatch *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->cfg = *cfg;
	w->cfg.mountpoint = NULL;
	w->stop_fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	w->info_fd = open(MOUNTINFO, O_RDONLY | O_CLOEXEC);
	if (w->info_fd < 0 || !(text = read_mountinfo(w->info_fd))) {
		r = -errno;
		goto fail;
	}
	r = mountinfo_find(text, cfg->mountpoint, &w->id);
	if (r < 0)
		goto fail;
	w->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (w->stop_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = thread_start(&w->thread, watch_thread, w, "vmf-mountwatch");
	if (r < 0)
		goto fail;
	w->started = true;
	*ret = w;
	return 0;
fail:
	mountwatch_stop(w);
	return r;
}

void mountwatch_stop(struct mountwatch *w)
{
	uint64_t one = 1;

	if (!w)
		return;
	if (w->started) {
		mutex_lock(&w->lock);
		w->stop = true;
		mutex_unlock(&w->lock);
		if (write(w->stop_fd, &one, sizeof(one)) < 0)
			abort(); /* an eventfd write cannot fail here */
		pthread_join(w->thread, NULL);
	}
	if (w->info_fd >= 0)
		close(w->info_fd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
