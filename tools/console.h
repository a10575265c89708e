/* SPDX-License-Identifier: MIT */
/* Following a server-run VM's serial console (GET .../console): its
 * bytes go to stdout as they arrive.  The fetch engine (fetch.h) buffers
 * whole answers, so this is a plain libcurl easy handle, owned by the
 * calling thread for the length of one call.
 */
#ifndef VMFERRY_CONSOLE_H
#define VMFERRY_CONSOLE_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "toolopts.h"

/* GET base/v1/images/name/console?offset=*off once, with o's TLS
 * settings and token, writing what comes to stdout and advancing *off.
 * The server ends the answer when the VM has ended and everything was
 * sent, or after a while without output.  Returns 0, -EINTR when *stop
 * was set (a signal), -ENOENT (the image never ran there), or -EIO with
 * a reason in why (256 bytes). */
int console_follow(const struct tool_opts *o, const char *base,
		   const char *token, const char *name, uint64_t *off,
		   volatile atomic_int *stop, char *why);

#endif
