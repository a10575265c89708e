/* SPDX-License-Identifier: MIT */
/* `vmferry-server token add|list|revoke`.  Single-threaded. */
#ifndef VMFERRY_CMD_TOKEN_H
#define VMFERRY_CMD_TOKEN_H

/* argv[0] is "token".  Returns as cli.h says. */
int cmd_token(int argc, char **argv);

#endif
