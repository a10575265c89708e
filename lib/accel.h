/* SPDX-License-Identifier: MIT */
/* Which QEMU accelerator to use: KVM only when a probe boot shows it
 * works, TCG otherwise.
 *
 * /dev/kvm can be present and useless (nested or paravirtual KVM where
 * QEMU aborts setting MSRs with -cpu host, or guests die with "KVM
 * internal error ... emulation failure" in the bootloader), so its mere
 * presence decides nothing.  The probe boots a one-sector guest under
 * KVM with the flags a real run uses (-accel kvm -cpu host): it calls the
 * BIOS (an interrupt and its iret in real mode) and writes to QEMU's
 * isa-debug-exit port, which ends QEMU with a known status.  The answer
 * is cached per host boot in ${TMPDIR:-/tmp}/vmferry-accel.UID.BOOT_ID
 * (the file tests/qemu/accel.sh reads), and concurrent probes wait for
 * one another (flock on the cache file's ".lock").
 *
 * Stateless; any thread, but it forks and waits for its own child.
 */
#ifndef VMFERRY_ACCEL_H
#define VMFERRY_ACCEL_H

#include <stddef.h>

enum accel {
	ACCEL_TCG,
	ACCEL_KVM,
};

/* "tcg" or "kvm". */
const char *accel_name(enum accel a);

/* Parse "tcg", "kvm" (0) or "auto" (1, meaning: probe); else -EINVAL. */
int accel_parse(const char *s, enum accel *ret);

/* Pick the accelerator for qemu (the binary's path): $VMFERRY_ACCEL
 * (tcg or kvm) wins; else TCG unless /dev/kvm is usable and a probe boot
 * (cached, see above) succeeds.  Always answers: returns 0 and *ret, with
 * a reason for a human in ret_why (room for len) when TCG was chosen
 * although KVM was possible, or "" otherwise; -EINVAL for a bad
 * $VMFERRY_ACCEL.  Blocks up to about 15 s on a first probe. */
int accel_pick(const char *qemu, enum accel *ret, char *ret_why, size_t len);

#endif
