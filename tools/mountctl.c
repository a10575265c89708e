/* SPDX-License-Identifier: MIT */
/* Talking to a running mount (see mountctl.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"

#include "../fusefs/ctl.h"
#include "mountctl.h"

/* One command's JSON answer; -ENOTCONN if mp is not a mount. */
static int request(const char *mp, const char *cmd, json_t **ret)
{
	_cleanup_free_ char *reply = NULL;
	char sock[256];
	json_t *o;

	if (ctl_find(mp, sock, sizeof(sock)) < 0 ||
	    ctl_request(sock, cmd, &reply) < 0)
		return -ENOTCONN;
	o = json_loads(reply, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return -EPROTO;
	}
	*ret = o;
	return 0;
}

/* One field of the mount's status, as a new reference in *ret. */
static int status_field(const char *mp, const char *key, json_t **ret)
{
	json_t *o, *v;
	int r = request(mp, "status", &o);

	if (r < 0)
		return -ENOTCONN;
	v = json_incref(json_object_get(o, key));
	json_decref(o);
	if (!v)
		return -ENOTCONN;
	*ret = v;
	return 0;
}

int mountctl_pid(const char *mp, pid_t *ret)
{
	json_t *v;
	int r = status_field(mp, "pid", &v);

	if (r < 0)
		return r;
	r = json_is_integer(v) && json_integer_value(v) > 0 ? 0 : -ENOTCONN;
	if (r == 0)
		*ret = (pid_t)json_integer_value(v);
	json_decref(v);
	return r;
}

int mountctl_read_only(const char *mp, bool *ret)
{
	json_t *v;
	int r = status_field(mp, "read_only", &v);

	if (r < 0)
		return r;
	*ret = json_is_true(v);
	json_decref(v);
	return 0;
}

int mountctl_sync(const char *mp, uint64_t *ret_version, char *ret_msg,
		  size_t len)
{
	json_t *o, *err, *ver;
	int r = request(mp, "sync", &o);

	snprintf(ret_msg, len, "%s", "");
	if (r < 0)
		return r;
	err = json_object_get(o, "error");
	ver = json_object_get(o, "version");
	if (json_is_string(err)) {
		snprintf(ret_msg, len, "%s", json_string_value(err));
		r = json_is_true(json_object_get(o, "conflict")) ? -ESTALE
								 : -EIO;
	} else if (json_is_integer(ver)) {
		snprintf(ret_msg, len, "%s",
			 json_string_value(json_object_get(o, "message"))
			     ?: "");
		*ret_version = (uint64_t)json_integer_value(ver);
	} else {
		snprintf(ret_msg, len, "malformed answer");
		r = -EIO;
	}
	json_decref(o);
	return r;
}

int mountctl_umount(const char *mp)
{
	pid_t pid, child;
	int st, r = mountctl_pid(mp, &pid);

	if (r < 0)
		return r;
	child = fork();
	if (child < 0)
		return -errno;
	if (child == 0) {
		execlp("fusermount3", "fusermount3", "-u", mp, (char *)NULL);
		_exit(127);
	}
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			return -EBUSY;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -EBUSY;
	for (int i = 0; i < 600; i++) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return 0;
		usleep(100000);
	}
	return -ETIMEDOUT;
}
