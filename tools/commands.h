/* SPDX-License-Identifier: MIT */
/* The `vmferry` subcommands.  Each takes its own argv (argv[0] is the
 * subcommand's name) and returns the exit status: 0, 1 (failure, one
 * line on stderr) or 2 (usage error). */
#ifndef VMFERRY_COMMANDS_H
#define VMFERRY_COMMANDS_H

int cmd_status(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_publish(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_discard(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_rekey(int argc, char **argv);

#endif
