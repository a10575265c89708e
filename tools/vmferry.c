/* SPDX-License-Identifier: MIT */
/* `vmferry`: dispatch to subcommands. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#include "../fusefs/main.h"
#include "commands.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
    {"mount", fusefs_mount_main,
     "mount a remote image: URL MOUNTPOINT (boots at once, fetches lazily)"},
    {"status", cmd_status, "show a mount's progress: MOUNTPOINT [--watch]"},
    {"sync", cmd_sync,
     "upload a mount's changes as the next version: MOUNTPOINT"},
    {"umount", cmd_umount, "unmount cleanly (syncs first): MOUNTPOINT"},
    {"push", cmd_push,
     "publish a local copy with its changes as a new image: URL --as NEW"},
    {"discard", cmd_discard,
     "destroy a local copy and its unsynced changes: URL"},
    {"publish", cmd_publish, "upload a raw image as a new version: URL FILE"},
    {"export", cmd_export,
     "write a version as files for any HTTPS/FTP server: URL DIR"},
    {"run", cmd_run,
     "run an image's VM here or on the server: NAME|URL --local|--remote"},
    {"stop", cmd_stop, "stop the VM the server runs for an image: NAME|URL"},
    {"vnc", cmd_vnc,
     "the display of the VM the server runs, for a local VNC viewer: NAME"},
    {"accel", cmd_accel, "print the accelerator run would use: kvm or tcg"},
    {"list", cmd_list, "show every local copy, its state and time left"},
    {"purge", cmd_purge,
     "destroy the local copies whose time is up (expired, ephemeral)"},
    {"rekey", cmd_rekey,
     "protect a local copy with a new key or passphrase: URL|DIR"},
};

/* The --cache DIR a command was given, if any, for the sweep. */
static const char *cache_arg(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--cache") == 0 && i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--cache=", 8) == 0)
			return argv[i] + 8;
	}
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: vmferry COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(out, "\n`vmferry COMMAND --help` describes each.\n"
		     "Environment: VMFERRY_TOKEN (bearer token), VMFERRY_DEBUG "
		     "(debug categories).\n");
}

int main(int argc, char **argv)
{
	/* Sockets and pipes whose reader left give EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	log_set_ident("vmferry");
	log_init_from_env();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		/* Expiry bites whatever runs: every command first destroys
		 * the copies whose time is up (plain records; purge itself
		 * also checks them with the key). */
		if (commands[i].fn != cmd_purge)
			(void)purge_sweep(cache_arg(argc, argv), NULL, false,
					  true);
		return commands[i].fn(argc - 1, argv + 1);
	}
	log_error("unknown command \"%s\" (see vmferry --help)", argv[1]);
	return 2;
}
