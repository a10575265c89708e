/* SPDX-License-Identifier: MIT */
/* VMs the server runs (`vmferry run --remote`, docs/protocol.md "VMs on
 * the server").
 *
 * A run takes the image's lease with "where": "remote", writes the
 * current version to DIR/run/NAME/disk.img (vm_disk.h), and boots QEMU
 * on it (qemu.h) with the serial console going to DIR/run/NAME/
 * console.log and coming from a pipe.  When QEMU ends (the guest powers
 * off, or vms_stop()), the disk is committed as the next version under
 * the lease, as a client's sync would be (import_file_as()), the lease
 * released and the disk removed.  One thread per VM does all of that
 * and renews the lease meanwhile.
 *
 * Owns the table of VMs (the latest run of each image, kept after it
 * ends for its status) and their threads.  Any thread may call the
 * functions; the table and each VM have their own lock (table first,
 * then VM), never held across I/O or a wait.
 */
#ifndef VMFERRY_VM_H
#define VMFERRY_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "leases.h"

struct versions;

struct vms_config {
	const char *dir;	/* the server's data directory */
	const char *qemu;	/* QEMU binary, NULL: none (runs refused) */
	int64_t lease_seconds;	/* the lease's length */
	uint64_t keep_versions; /* retention after the commit */
	unsigned grace_s;	/* a stop waits this long for the guest */
};

enum vm_state {
	VM_STARTING, /* writing the disk, starting QEMU */
	VM_RUNNING,
	VM_STOPPING, /* asked to power off */
	VM_SAVING,   /* committing the disk as a new version */
	VM_STOPPED,  /* done: the version is committed */
	VM_FAILED,   /* done, without a new version (error says why) */
};

struct vm_status {
	enum vm_state state;
	char holder[VMF_LEASE_HOLDER_MAX + 1];
	int64_t since;	       /* start, Unix time */
	uint64_t base;	       /* the version it runs from */
	uint64_t version;      /* committed when it stopped; 0: none */
	bool unchanged;	       /* stopped with its disk as base: version
				* is base, no new one was made */
	uint64_t console_size; /* bytes of console output so far */
	char error[200];       /* VM_FAILED: why */
};

struct vms;
struct vm_console;

/* "starting", "running", ... */
const char *vm_state_name(enum vm_state s);

/* The table; cfg's strings are copied.  0 or -ENOMEM. */
int vms_new(struct versions *v, const struct vms_config *cfg, struct vms **ret);
/* Stop every running VM at once (QMP quit: no grace), let each save
 * its disk, join the threads, free.  Blocks.  vms_free(NULL): no-op. */
void vms_free(struct vms *m);

/* Run image name for holder (a human's label), committing in the name
 * of author.  Returns 0 once the VM's thread started (the VM is then
 * VM_STARTING); -EBUSY if a live lease holds the image (*ret_held, a VM
 * of this server included); -ENOENT (no such image); -ENOEXEC (no QEMU
 * on this server); or an I/O -errno. */
int vms_start(struct vms *m, const char *name, const char *holder,
	      const char *author, struct lease *ret_held);

/* Ask the running VM of name to stop: power button, then quit after the
 * grace time; returns at once.  0, or -ENOENT if it is not running. */
int vms_stop(struct vms *m, const char *name);

/* The latest run of name since the server started.  0 or -ENOENT. */
int vms_status(struct vms *m, const char *name, struct vm_status *ret);

/* Send len bytes to the VM's serial console.  0, -ENOENT (not
 * running), -EAGAIN (its input is full: retry). */
int vms_input(struct vms *m, const char *name, const void *buf, size_t len);

/* Connect to the VNC display of name's running VM (QEMU's Unix socket
 * DIR/run/NAME/vnc.sock): a new blocking socket in *ret_fd.  -ENOENT
 * (no run since the server started), -ENOTCONN (not running: starting,
 * stopping, ended), -EAGAIN while QEMU is not yet listening, or
 * -errno. */
int vms_vnc_connect(struct vms *m, const char *name, int *ret_fd);

/* The console output of name's latest run, from its start: open (a
 * reference to the run; -ENOENT if none), read, close. */
int vms_console_open(struct vms *m, const char *name, struct vm_console **ret);
/* Up to len bytes from offset off: the count, 0 if there is nothing yet
 * and the VM is still going, -ENODATA once it has ended and everything
 * was read, or -errno.  Does not block. */
ssize_t vm_console_read(struct vm_console *c, uint64_t off, void *buf,
			size_t len);
void vm_console_close(struct vm_console *c);

#endif
