/* SPDX-License-Identifier: MIT */
/* `vmferry stop NAME|URL`: stop the VM the server runs for an image, and
 * wait until its disk is committed as the next version. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#include "../fusefs/crypto.h"
#include "../fusefs/fetch.h"
#include "../fusefs/remote_vm.h"
#include "commands.h"
#include "run.h"

#define STOP_WAIT_S 600

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vmferry stop [OPTIONS] NAME|URL\n"
		"\n"
		"Stop the VM the server runs for an image (`vmferry run\n"
		"--remote`): the guest's power button, then QEMU quits after\n"
		"the server's grace time; its disk becomes the next version.\n"
		"Waits for that and prints the version.\n"
		"\n"
		"      --server URL        https://HOST:PORT (default: "
		"$VMFERRY_SERVER)\n"
		"      --token-file FILE, --cacert FILE, --pin-sha256 B64,\n"
		"      --insecure          as for `vmferry mount`\n");
}

static int stop_opt(int c, const char *arg, void *opaque)
{
	struct run_opts *ro = opaque;

	(void)c; /* --server, the only one */
	ro->server = arg;
	return 0;
}

static int wait_stopped(struct run_opts *ro, struct fetch *f)
{
	struct remote_vm vm;
	char why[256];

	for (int i = 0; i < STOP_WAIT_S * 2; i++) {
		if (remote_vm_state(f, ro->u.name, &vm, why) == 0 &&
		    remote_vm_done(&vm)) {
			if (strcmp(vm.state, "failed") == 0) {
				log_error("%s: the VM failed: %s", ro->url,
					  vm.error);
				return 1;
			}
			printf("stopped: %s is version %" PRIu64 "%s\n",
			       ro->u.name, vm.version,
			       vm.unchanged ? " (unchanged: no new version)"
					    : "");
			return 0;
		}
		usleep(500000);
	}
	log_error("%s: the VM has not stopped after %d s", ro->url,
		  STOP_WAIT_S);
	return 1;
}

int cmd_stop(int argc, char **argv)
{
	static const struct option own[] = {
	    {"server", required_argument, NULL, 256},
	    {NULL, 0, NULL, 0},
	};
	struct run_opts ro = {.o = {.want = TOOL_OPT_SERVER}};
	struct fetch *f = NULL;
	char url[1100], *token = NULL, why[256];
	int r, status = 1;

	r = tool_parse(argc, argv, &ro.o, own, stop_opt, &ro, usage);
	if (r >= 0)
		return r;
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	r = run_resolve(&ro, argv[optind], url, sizeof(url));
	if (r)
		return r;
	if (run_connect(&ro, &f, &token) < 0)
		return 1;
	r = remote_vm_stop(f, ro.u.name, why);
	if (r == 0)
		status = wait_stopped(&ro, f);
	else if (r == -EALREADY)
		log_error("%s: %s", ro.url, why);
	else if (r == -EACCES)
		log_error("%s: the token may not stop this image's VM (it "
			  "needs the run grant)",
			  ro.url);
	else
		log_error("%s: %s (%s)", ro.url, remote_strerror(r), why);
	fetch_free(f);
	crypto_cleanse(token, strlen(token));
	free(token);
	return status;
}
