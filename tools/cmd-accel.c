/* SPDX-License-Identifier: MIT */
/* `vmferry accel`: print the accelerator `vmferry run` would use (kvm or
 * tcg), by the probe in lib/accel.h; the QEMU tests use it too. */
#include <stdio.h>
#include <string.h>

#include "accel.h"
#include "log.h"
#include "qemu.h"

#include "commands.h"

int cmd_accel(int argc, char **argv)
{
	const char *binary = QEMU_DEFAULT_BINARY;
	char path[4096], why[256];
	enum accel a;

	if (argc == 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: vmferry accel [QEMU]\n\nPrint kvm or tcg: the "
		       "accelerator `vmferry run` would use.  KVM only\n"
		       "when a short probe boot under KVM works (the answer "
		       "is cached until\nthe next host boot); "
		       "$VMFERRY_ACCEL=kvm|tcg overrides.\n");
		return 0;
	}
	if (argc > 2) {
		fprintf(stderr, "usage: vmferry accel [QEMU]\n");
		return 2;
	}
	if (argc == 2)
		binary = argv[1];
	if (qemu_find(binary, path, sizeof(path)) < 0) {
		log_error("%s not found", binary);
		return 1;
	}
	if (accel_pick(path, &a, why, sizeof(why)) < 0) {
		log_error("$VMFERRY_ACCEL: want kvm or tcg");
		return 2;
	}
	if (*why)
		log_info("tcg: %s", why);
	printf("%s\n", accel_name(a));
	return 0;
}
