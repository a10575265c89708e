/* SPDX-License-Identifier: MIT */
/* `vmferry umount MOUNTPOINT`: unmount and wait for the daemon to finish
 * (so its cache is closed when this returns). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#include "commands.h"
#include "mountctl.h"

int cmd_umount(int argc, char **argv)
{
	int r;

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
	r = mountctl_umount(argv[1]);
	if (r == -ENOTCONN)
		log_error("%s is not a vmferry mount", argv[1]);
	else if (r == -EBUSY)
		log_error("fusermount3 -u %s failed (is the image in use?)",
			  argv[1]);
	else if (r < 0)
		log_error("the mount process of %s is still running after "
			  "60 s",
			  argv[1]);
	return r < 0 ? 1 : 0;
}
