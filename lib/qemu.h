/* SPDX-License-Identifier: MIT */
/* Running qemu-system-x86_64 on one raw disk, and stopping it through
 * QMP.  Used by `vmferry run` (the VM on the user's machine) and by the
 * server (the VM on the server).
 *
 * A struct qemu is the one child process it started, and only that
 * process is ever signalled.  One thread uses a struct qemu at a time,
 * except qemu_powerdown()/qemu_quit(), which only talk to the QMP socket
 * and may be called from another thread while one waits.
 */
#ifndef VMFERRY_QEMU_H
#define VMFERRY_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "accel.h"

#define QEMU_DEFAULT_BINARY "qemu-system-x86_64"
#define QEMU_DEFAULT_MEMORY 1024 /* MiB */
#define QEMU_DEFAULT_CPUS   1
#define QEMU_MAX_MEMORY	    (1024 * 1024) /* MiB: 1 TiB */
#define QEMU_MAX_CPUS	    255

struct qemu_config {
	const char *binary; /* a path (see qemu_find) */
	const char *disk;   /* the raw disk image */
	enum accel accel;
	uint64_t memory_mib; /* 0: QEMU_DEFAULT_MEMORY */
	unsigned cpus;	     /* 0: QEMU_DEFAULT_CPUS */
	/* NULL: no display, the serial console on stdin/stdout (with
	 * Ctrl-C raising SIGINT on a terminal, see qemu_start()); else a
	 * QEMU -display value ("gtk", "sdl", "vnc=unix:PATH", ...). */
	const char *display;
	const char *qmp_path; /* where QEMU listens for QMP (a Unix socket) */
	/* NULL: no VNC; else a VGA whose VNC server listens on this Unix
	 * socket only (never a TCP port).  No ',' in it. */
	const char *vnc_path;
	/* fds the child gets as stdin, stdout and stderr; -1: inherited. */
	int in_fd, out_fd, err_fd;
	bool network;	  /* a user-mode virtio NIC */
	bool snapshot;	  /* the disk is read-only: writes go to a
			   * temporary overlay, dropped at the end */
	bool new_session; /* setsid(): away from the caller's terminal */
};

struct qemu;

/* Find binary: a name looked up in $PATH, or a path (anything with '/').
 * Returns 0 and the path in buf (room for len), or -ENOENT. */
int qemu_find(const char *binary, char *buf, size_t len);

/* Start QEMU.  The child has SIGINT blocked (inherited by QEMU, which
 * never unblocks it): Ctrl-C on the terminal reaches only the caller,
 * which can then shut the guest down cleanly (qemu_powerdown).  Returns
 * 0 and a new *ret (free with qemu_free), or -errno if it could not
 * fork; an exec failure shows as exit status 127. */
int qemu_start(const struct qemu_config *cfg, struct qemu **ret);

pid_t qemu_pid(const struct qemu *q);

/* Wait up to timeout_ms (-1: for ever) for QEMU to exit.  Returns 0 and
 * its wait status in *ret_status, -ETIMEDOUT, or -EINTR when a signal
 * arrived (the caller looks at its flags and calls again). */
int qemu_wait(struct qemu *q, int timeout_ms, int *ret_status);

/* QMP "system_powerdown" (the ACPI power button: a clean shutdown if the
 * guest handles it) or "quit" (QEMU flushes its disks and exits).
 * Returns 0 once QEMU accepted it, -ECONNREFUSED/-ENOENT when QMP is not
 * (yet, or any more) there, -EPROTO for an unexpected answer.  Blocks up
 * to a few seconds. */
int qemu_powerdown(struct qemu *q);
int qemu_quit(struct qemu *q);

/* Stop QEMU cleanly: powerdown, wait grace_ms for the guest, then quit,
 * then SIGKILL (our child) as the last resort.  Returns its wait status
 * (as qemu_wait) in *ret_status.  Always reaps the child. */
void qemu_shutdown(struct qemu *q, int grace_ms, int *ret_status);

/* Kill (SIGKILL) and reap the child if it still runs, then free.
 * qemu_free(NULL) is a no-op. */
void qemu_free(struct qemu *q);

/* An image policy's "vm" object ({"memory": "2G" or MiB, "cpus": N};
 * vm may be NULL) into *ret_memory_mib and *ret_cpus, each left at 0
 * when absent or invalid: they size a VM, they guard nothing. */
void qemu_policy_size(json_t *vm, uint64_t *ret_memory_mib, unsigned *ret_cpus);

/* A wait status in words ("exited with status 1", "killed by signal
 * 9") into buf. */
void qemu_describe_status(int status, char *buf, size_t len);

#endif
