/* SPDX-License-Identifier: MIT */
/* The client side of leases (one writer per image) and pins (a reader's
 * hold on its version), docs/protocol.md.
 *
 * Stateless; any thread.  Blocks on the network through fetch_run().
 */
#ifndef VMFERRY_LEASE_H
#define VMFERRY_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct fetch;

struct lease {
	char id[VMF_LEASE_ID_HEX_LEN + 1];
	int64_t since, expires; /* unix seconds, the server's clock */
	bool renewed;		/* the id presented was still live */
};

/* Take or renew the lease on image name for holder (e.g. "user@host"),
 * presenting prev_id (may be NULL or "") to renew, and telling the server
 * which version this copy is based on (its retention keeps it).  Returns 0 and *ret;
 * -EBUSY when someone else holds it (ret_why says who and since when);
 * -EACCES without the write grant; or a fetch error.  ret_why: 256 bytes. */
int lease_acquire(struct fetch *f, const char *name, const char *holder,
		  const char *prev_id, uint64_t version, struct lease *ret,
		  char *ret_why);

/* Release lease id on name.  Returns 0 (also when it had lapsed), -EBUSY
 * if another holder's lease is live, or a fetch error. */
int lease_release(struct fetch *f, const char *name, const char *id,
		  char *ret_why);

/* Pin version of image name for holder (docs/protocol.md, "Pins"), or
 * renew pin prev_id (may be NULL or ""): the server's retention keeps
 * the version while the pin lives.  ret->renewed as for a lease.
 * Returns 0; -ENOENT when the server has no such route, image or
 * version (ret_why says which); or a fetch error.  ret_why: 256 bytes. */
int lease_pin(struct fetch *f, const char *name, const char *holder,
	      const char *prev_id, uint64_t version, struct lease *ret,
	      char *ret_why);

/* Release pin id on name.  Returns 0 or a fetch error. */
int lease_unpin(struct fetch *f, const char *name, const char *id,
		char *ret_why);

/* "user@host" for this process, into buf. */
void lease_holder_name(char *buf, size_t len);

#endif
