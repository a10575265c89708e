/* SPDX-License-Identifier: MIT */
/* FUSE callbacks: unpack the request, call image_*, reply.  No logic.
 *
 * The mount shows one directory holding one file, NAME.img.  The root
 * directory carries the control socket's path in the CTL_XATTR extended
 * attribute.
 */
#ifndef VMFERRY_FUSE_OPS_H
#define VMFERRY_FUSE_OPS_H

#define FUSE_USE_VERSION 312 /* libfuse 3.12: fuse_loop_cfg_* */
#include <fuse.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "proto.h"

struct image;

/* Passed to fuse_new() as user data; set before the loop starts. */
struct fuse_ops_ctx {
	struct image *im;
	char file_name[VMF_NAME_MAX + 8]; /* "NAME.img" */
	uint64_t size;
	time_t mtime;
	const char *ctl_path;
	bool read_only; /* --read-only: opens for writing get EROFS */
	/* Set (any thread) when the copy expired: every read, write and
	 * discard gets EIO from then on. */
	atomic_bool stopped;
	/* Files open on the mount (opens that succeeded, less releases):
	 * whether a mount gone from the namespace is still in use. */
	atomic_uint open_files;
};

const struct fuse_operations *fuse_ops_get(void);

#endif
