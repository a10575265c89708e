/* SPDX-License-Identifier: MIT */
/* The audit log (audit.h).
 *
 * Owns one O_APPEND file descriptor.  A record is built as JSON in
 * memory and written with a single write(): O_APPEND makes each write
 * land whole at the end of the file, whichever thread or process wrote
 * last, so no lock is needed.  The command-line source records the
 * caller's uid as well.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "log.h"
#include "util.h"

#include "audit.h"
#include "cli.h"

struct audit {
	int fd;		    /* set at open, O_APPEND */
	char *path;	    /* for messages */
	atomic_bool warned; /* a write failed and was reported */
};

int audit_open(const char *dir, struct audit **ret)
{
	struct audit *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return -ENOMEM;
	a->path = cli_dir_file(dir, AUDIT_FILE);
	if (!a->path) {
		free(a);
		return -ENOMEM;
	}
	a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		r = -errno;
		free(a->path);
		free(a);
		return r;
	}
	*ret = a;
	return 0;
}

void audit_close(struct audit *a)
{
	if (!a)
		return;
	(void)close(a->fd); /* O_APPEND writes: nothing buffered */
	free(a->path);
	free(a);
}

int audit_chown(struct audit *a, uid_t uid, gid_t gid)
{
	return fchown(a->fd, uid, gid) < 0 ? -errno : 0;
}

/* ISO 8601 UTC with milliseconds: records of one second stay ordered. */
static void format_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03ldZ", sec, ts.tv_nsec / 1000000);
}

static json_t *entry_json(const struct audit_entry *e)
{
	char when[48];
	json_t *o = json_object();

	if (!o)
		return NULL;
	format_now(when, sizeof(when));
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "action", json_string(e->action));
	if (e->status) {
		json_object_set_new(o, "source", json_string("http"));
		json_object_set_new(o, "status", json_integer(e->status));
		json_object_set_new(
		    o, "result",
		    json_string(e->status < 400 ? "ok" : "refused"));
	} else {
		json_object_set_new(o, "source", json_string("cli"));
		json_object_set_new(o, "uid",
				    json_integer((json_int_t)getuid()));
		json_object_set_new(o, "result", json_string("ok"));
	}
	if (e->token)
		json_object_set_new(o, "token", json_string(e->token));
	if (e->addr)
		json_object_set_new(o, "addr", json_string(e->addr));
	if (e->image)
		json_object_set_new(o, "image", json_string(e->image));
	if (e->version)
		json_object_set_new(o, "version",
				    json_integer((json_int_t)e->version));
	if (e->extra)
		json_object_update(o, e->extra);
	return o;
}

int audit_log(struct audit *a, const struct audit_entry *e)
{
	_cleanup_free_ char *text = NULL;
	json_t *o;
	size_t len;
	ssize_t n;
	int r = 0;

	if (!a) {
		json_decref(e->extra);
		return 0;
	}
	o = entry_json(e);
	json_decref(e->extra);
	if (o)
		text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!text)
		return log_oom();
	len = strlen(text);
	text[len] = '\n'; /* the NUL is not written */
	n = write(a->fd, text, len + 1);
	if (n < 0)
		r = -errno;
	else if ((size_t)n != len + 1)
		r = -ENOSPC; /* a short append: the disk is full */
	if (r < 0) {
		/* Relaxed: only limits the warnings to one per failure burst. */
		if (!atomic_exchange_explicit(&a->warned, true,
					      memory_order_relaxed))
			log_error_errno(r, "appending to %s: %m", a->path);
		return r;
	}
	atomic_store_explicit(&a->warned, false, memory_order_relaxed);
	return 0;
}

void audit_cli(const char *dir, const struct audit_entry *e)
{
	struct audit *a = NULL;
	int r;

	r = audit_open(dir, &a);
	if (r < 0) {
		json_decref(e->extra);
		log_warn_errno(r, "cannot append to %s/%s: %m", dir,
			       AUDIT_FILE);
		return;
	}
	(void)audit_log(a, e); /* logged there; the change itself is done */
	audit_close(a);
}
