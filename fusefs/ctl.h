/* SPDX-License-Identifier: MIT */
/* Control socket: how `vmferry status` and `vmferry umount` talk to a
 * running mount.
 *
 * A Unix stream socket in a private runtime directory
 * ($XDG_RUNTIME_DIR/vmferry or /tmp/vmferry-UID, mode 0700).  A client
 * sends one command line ("status\n") and reads one reply (a JSON
 * object) until EOF.  The mount tells clients where its socket is through
 * the extended attribute CTL_XATTR on the mount's root directory.
 *
 * Server side: one thread (ctl_start/ctl_stop); the handler runs on it.
 * Client side: stateless.  Both sides must ignore SIGPIPE (the mount does
 * through libfuse's handlers, the CLI in main()): a peer that hangs up is
 * an error, not a kill.
 */
#ifndef VMFERRY_CTL_H
#define VMFERRY_CTL_H

#include <stddef.h>

#define CTL_XATTR "user.vmferry.control"

struct ctl;

/* Returns 0 and a new JSON reply in *ret_reply (caller frees), or -errno
 * (then the client gets {"error": "..."}). */
typedef int ctl_handler_fn(void *opaque, const char *cmd, char **ret_reply);

/* The private runtime directory (created 0700 if needed; refused,
 * -EPERM, if owned by someone else or open to others) into buf.
 * Returns 0 or -errno. */
int ctl_runtime_dir(char *buf, size_t len);

/* Pick a socket path for this process in the runtime directory (created
 * 0700 if needed; refused if owned by someone else).  Returns 0 or
 * -errno. */
int ctl_socket_path(char *buf, size_t len);

/* Listen on path and serve commands on a new thread. */
int ctl_start(const char *path, ctl_handler_fn *fn, void *opaque,
	      struct ctl **ret);
/* Stop, join, remove the socket.  ctl_stop(NULL) is a no-op. */
void ctl_stop(struct ctl *c);

/* Client: find the socket of the mount at mountpoint (getxattr).  Returns
 * 0, -ENODATA/-ENOTSUP if it is not a vmferry mount, or -errno. */
int ctl_find(const char *mountpoint, char *buf, size_t len);
/* Client: send cmd, return the reply (new string, caller frees). */
int ctl_request(const char *path, const char *cmd, char **ret_reply);

#endif
