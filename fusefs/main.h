/* SPDX-License-Identifier: MIT */
/* `vmferry mount`: options, start-up, the FUSE loop, shutdown. */
#ifndef VMFERRY_FUSEFS_MAIN_H
#define VMFERRY_FUSEFS_MAIN_H

/* Entry point for `vmferry mount ...` (argv[0] is "mount").  Returns the
 * process exit status: 0, 1 (failure, one line on stderr) or 2 (usage). */
int fusefs_mount_main(int argc, char **argv);

#endif
