/* SPDX-License-Identifier: MIT */
/* `vmferry sync MOUNTPOINT`: upload the mount's changes now, wait until
 * the server has committed them, print the new version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cleanup.h"
#include "log.h"

#include "../fusefs/ctl.h"
#include "commands.h"

int cmd_sync(int argc, char **argv)
{
	_cleanup_free_ char *reply = NULL;
	char sock[256];
	json_t *o, *err;
	int r, status = 1;

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
	if (ctl_find(argv[1], sock, sizeof(sock)) < 0) {
		log_error("%s is not a vmferry mount", argv[1]);
		return 1;
	}
	r = ctl_request(sock, "sync", &reply);
	if (r < 0) {
		log_error_errno(r, "sync of %s: %m", argv[1]);
		return 1;
	}
	o = json_loads(reply, 0, NULL);
	err = json_object_get(o, "error");
	if (json_is_string(err)) {
		log_error("sync of %s failed: %s%s", argv[1],
			  json_string_value(err),
			  json_is_true(json_object_get(o, "conflict"))
			      ? " (a conflict: the changes stay in the local "
				"copy; after unmounting, keep them as a new "
				"image with `vmferry push --as NEW URL`, or "
				"drop them with `vmferry discard URL`)"
			      : "");
	} else if (json_is_integer(json_object_get(o, "version"))) {
		printf("synced: %s\n",
		       json_string_value(json_object_get(o, "message")));
		status = 0;
	} else {
		log_error("sync of %s: malformed answer", argv[1]);
	}
	json_decref(o);
	return status;
}
