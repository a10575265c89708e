/* SPDX-License-Identifier: MIT */
/* vmferry-server gc: retention and block garbage collection. */
#ifndef VMFERRY_CMD_GC_H
#define VMFERRY_CMD_GC_H

int cmd_gc(int argc, char **argv);

#endif
