/* SPDX-License-Identifier: MIT */
/* `vmferry-server lease list|break` and `vmferry-server versions`: the
 * administrator's view of leases and history.  Single-threaded. */
#ifndef VMFERRY_CMD_LEASE_H
#define VMFERRY_CMD_LEASE_H

/* argv[0] is "lease" or "versions".  Return as cli.h says. */
int cmd_lease(int argc, char **argv);
int cmd_versions(int argc, char **argv);

#endif
