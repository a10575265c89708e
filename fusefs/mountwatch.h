/* SPDX-License-Identifier: MIT */
/* Watching that the FUSE mount is still in this process's mount
 * namespace.
 *
 * A user's `fusermount3 -u` removes the mount from the namespace it was
 * made in, and normally the kernel then ends the FUSE connection, which
 * ends the daemon's loop and starts its teardown (final sync, lease
 * release).  But the connection lives as long as any mount of it: a
 * process started while the mount existed in a mount namespace of its
 * own (`unshare -m`, `ip netns exec`, a container runtime) holds a copy
 * of the mount wherever "/" is not a shared mount or the copy is
 * private.  The daemon would then serve nobody for as long as that
 * process lives, with its final sync and its lease waiting.
 *
 * The watch polls /proc/self/mountinfo (the kernel flags every change of
 * the mount table) and calls gone() once when the mount has left this
 * namespace, no file is open on it (in_use(); a lazy unmount of a disk
 * QEMU still has open goes on serving QEMU) and grace_ns has passed
 * since: long enough for an ordinary unmount to end the loop by itself.
 *
 * Threading: one thread, "vmf-mountwatch".  gone() runs on it, under the
 * watch's lock, so after mountwatch_stop() returns it is not running and
 * never runs again.
 */
#ifndef VMFERRY_MOUNTWATCH_H
#define VMFERRY_MOUNTWATCH_H

#include <stdbool.h>
#include <stdint.h>

struct mountwatch_config {
	const char *mountpoint; /* absolute and canonical (realpath()) */
	uint64_t grace_ns;
	bool (*in_use)(void *opaque); /* whether files are open on it */
	void (*gone)(void *opaque);
	void *opaque;
};

struct mountwatch;

/* Find the mount on cfg->mountpoint (the newest FUSE mount there) and
 * start watching it.  Returns 0 with *ret set, -ENOENT when no FUSE
 * mount is on the mountpoint, or -errno. */
int mountwatch_start(const struct mountwatch_config *cfg,
		     struct mountwatch **ret);

/* Stop the watch and free it (NULL is fine).  Joins its thread. */
void mountwatch_stop(struct mountwatch *w);

/* Parsing, for the unit test: text is /proc/self/mountinfo's contents
 * (NUL-terminated).  mountinfo_find() sets *ret_id to the mount ID of
 * the last line whose mount point is path and whose file system type
 * begins with "fuse", and returns 0, or -ENOENT.  mountinfo_has()
 * returns whether a line has mount ID id. */
int mountinfo_find(const char *text, const char *path, long *ret_id);
bool mountinfo_has(const char *text, long id);

#endif
