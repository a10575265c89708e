/* SPDX-License-Identifier: MIT */
/* A read-only mount's pin on the version it reads (docs/protocol.md,
 * "Pins"): taken at mount, renewed at a third of its length, released at
 * unmount, so the server's retention never drops the version under a
 * reader.  A read-write mount needs none: its lease names its version.
 *
 * Owns one thread.  pin_keeper_start() and pin_keeper_stop() from one
 * thread (the mount's); they block on the network.
 */
#ifndef VMFERRY_PIN_H
#define VMFERRY_PIN_H

#include <stdint.h>

struct fetch;
struct pin_keeper;

/* Pin version of image name for holder and start renewing it; f is
 * borrowed and must outlive the keeper.  Returns 0 and *ret; -ENOENT
 * when the server does not pin (no such route: a plain HTTP server) or
 * no longer has the version; or a fetch error.  ret_why: 256 bytes. */
int pin_keeper_start(struct fetch *f, const char *name, const char *holder,
		     uint64_t version, struct pin_keeper **ret, char *ret_why);

/* Stop renewing and release the pin (a failure is logged: the pin then
 * lapses on its own).  NULL is a no-op. */
void pin_keeper_stop(struct pin_keeper *k);

#endif
