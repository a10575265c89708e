/* SPDX-License-Identifier: MIT */
/* The `vmferry` subcommands.  Each takes its own argv (argv[0] is the
 * subcommand's name) and returns the exit status: 0, 1 (failure, one
 * line on stderr) or 2 (usage error). */
#ifndef VMFERRY_COMMANDS_H
#define VMFERRY_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>

int cmd_status(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_publish(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_discard(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_purge(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_accel(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_vnc(int argc, char **argv);

struct keys_user;

/* Destroy the copies under cache_base (NULL: the default) whose time is
 * up (see cmd-purge.c); user NULL checks plain records only; quiet
 * (the sweep before every command) looks at expiry only and logs only
 * what it destroys.  Returns how many, or -errno. */
int purge_sweep(const char *cache_base, const struct keys_user *user,
		bool dry_run, bool quiet);
int cmd_rekey(int argc, char **argv);

#endif
