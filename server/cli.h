/* SPDX-License-Identifier: MIT */
/* Helpers shared by vmferry-server's subcommands (main.c and
 * cmd_token.c): usage errors, server directory paths.
 *
 * A command returns 0, CLI_EXIT_USAGE (after cli_usage_error()), or a
 * negative errno it has already logged; main() maps these to exit
 * statuses 0, 2 and 1.  Single-threaded.
 */
#ifndef VMFERRY_CLI_H
#define VMFERRY_CLI_H

#define CLI_PROG       "vmferry-server"
#define CLI_EXIT_USAGE 2
#define CLI_TOKENS     "tokens.json"

/* Print "vmferry-server: MESSAGE" and a pointer to cmd's --help on
 * stderr; returns CLI_EXIT_USAGE.  cmd is "init", "token add", ... */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse the options of a command that has none but --help: 0 to go
 * on (optind at the first argument), 1 after printing usage on stdout,
 * or CLI_EXIT_USAGE. */
int cli_parse_help(int argc, char **argv, const char *usage, const char *cmd);

/* A new string "dir/name" (caller frees), or NULL. */
char *cli_dir_file(const char *dir, const char *name);

/* 0 if dir holds a server (its tokens.json), else logs and -ENOENT. */
int cli_check_server_dir(const char *dir);

struct store;
struct versions;

/* cli_check_server_dir(), then open DIR's store and images (*ret_s and
 * *ret_v, the caller frees both); errors are logged. */
int cli_open_store(const char *dir, struct store **ret_s,
		   struct versions **ret_v);

#endif
