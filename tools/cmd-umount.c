/* SPDX-License-Identifier: MIT */
/* `vmferry umount MOUNTPOINT`: unmount and wait for the daemon to finish
 * (so its cache is closed when this returns). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "log.h"

#include "../fusefs/ctl.h"
#include "commands.h"

static pid_t mount_pid(const char *mp)
{
	_cleanup_free_ char *reply = NULL;
	char sock[256];
	json_t *o, *v;
	pid_t pid = 0;

	if (ctl_find(mp, sock, sizeof(sock)) < 0 ||
	    ctl_request(sock, "status", &reply) < 0)
		return 0;
	o = json_loads(reply, 0, NULL);
	v = json_object_get(o, "pid");
	if (json_is_integer(v))
		pid = (pid_t)json_integer_value(v);
	json_decref(o);
	return pid;
}

int cmd_umount(int argc, char **argv)
{
	pid_t pid, child;
	int st;

	if (argc == 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: vmferry umount MOUNTPOINT\n\nUnmount and wait "
		       "until the mount's process has closed its cache.\n");
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: vmferry umount MOUNTPOINT\n");
		return 2;
	}
	pid = mount_pid(argv[1]);
	if (pid <= 0) {
		log_error("%s is not a vmferry mount", argv[1]);
		return 1;
	}
	child = fork();
	if (child < 0) {
		log_error_errno(-errno, "fork: %m");
		return 1;
	}
	if (child == 0) {
		execlp("fusermount3", "fusermount3", "-u", argv[1],
		       (char *)NULL);
		_exit(127);
	}
	if (waitpid(child, &st, 0) < 0 || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		log_error("fusermount3 -u %s failed (is the image in use?)",
			  argv[1]);
		return 1;
	}
	for (int i = 0; i < 600; i++) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return 0;
		usleep(100000);
	}
	log_error("the mount process %d is still running after 60 s", (int)pid);
	return 1;
}
