/* SPDX-License-Identifier: MIT */
/* `vmferry sync MOUNTPOINT`: upload the mount's changes now, wait until
 * the server has committed them, print the new version. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#include "commands.h"
#include "mountctl.h"

int cmd_sync(int argc, char **argv)
{
	uint64_t version;
	char msg[512];
	int r;

	if (argc == 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: vmferry sync MOUNTPOINT\n\nUpload the blocks "
		       "written through the mount that the server lacks,\n"
		       "commit them as the image's next version, and print "
		       "it.\n");
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: vmferry sync MOUNTPOINT\n");
		return 2;
	}
	r = mountctl_sync(argv[1], &version, msg, sizeof(msg));
	if (r == -ENOTCONN) {
		log_error("%s is not a vmferry mount", argv[1]);
		return 1;
	}
	if (r < 0) {
		log_error("sync of %s failed: %s%s", argv[1], msg,
			  r == -ESTALE
			      ? " (a conflict: the changes stay in the local "
				"copy; after unmounting, keep them as a new "
				"image with `vmferry push --as NEW URL`, or "
				"drop them with `vmferry discard URL`)"
			      : "");
		return 1;
	}
	printf("synced: %s\n", msg);
	return 0;
}
