/* SPDX-License-Identifier: MIT */
/* The client side of VMs run by the server (docs/protocol.md, "VMs on
 * the server"): start, state, stop, console input.  The console's
 * output is tools/console.c's.
 *
 * Stateless; any thread.  Calls block on the network through
 * fetch_run().  ret_why has room for 256 bytes: the server's message
 * when it refused.
 */
#ifndef VMFERRY_REMOTE_VM_H
#define VMFERRY_REMOTE_VM_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct fetch;

struct remote_vm {
	char state[16];	  /* "none", "starting", "running", "stopping",
			 * "saving", "stopped", "failed" */
	uint64_t base;	  /* the version it runs from */
	uint64_t version; /* committed when it stopped; 0: not (yet) */
	int unchanged;	  /* stopped with no change: version is base */
	uint64_t console_size;
	int64_t since;
	char error[200]; /* "failed": why */
};

/* POST .../vm.  0 and *ret, or: -EBUSY (the image's lease is held: the
 * server's sentence in ret_why), -EACCES (no run grant), -ENOENT (no
 * such image), -ENOEXEC (the server runs no VMs), a fetch error. */
int remote_vm_start(struct fetch *f, const char *name, struct remote_vm *ret,
		    char *ret_why);

/* GET .../vm.  0 and *ret, -ENOENT (no such image), a fetch error. */
int remote_vm_state(struct fetch *f, const char *name, struct remote_vm *ret,
		    char *ret_why);

/* DELETE .../vm: ask it to stop.  0, -EALREADY (not running), -EACCES,
 * a fetch error. */
int remote_vm_stop(struct fetch *f, const char *name, char *ret_why);

/* POST .../console: len bytes (at most 4096) to its serial console. 0,
 * -EALREADY (not running), -EAGAIN (full: retry), a fetch error. */
int remote_vm_input(struct fetch *f, const char *name, const void *buf,
		    size_t len, char *ret_why);

/* True once the VM has ended ("stopped" or "failed"). */
int remote_vm_done(const struct remote_vm *vm);

#endif
