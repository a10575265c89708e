/* SPDX-License-Identifier: MIT */
/* Pins: a reader's hold on the version it reads.
 *
 * A read-only mount reads one version for as long as it is mounted
 * ("never mix versions"), but holds no lease, so retention would drop
 * that version after enough commits and the mount's uncached reads
 * would fail.  A pin says "client HOLDER reads version N until time T";
 * retention (retention.h) keeps every version a live pin names.  Pins
 * expire like leases (the same duration) and are renewed by the client
 * while it is mounted; an expired pin is as good as none.
 *
 * Stored in images/NAME/pins.json, an object of pin id -> {holder,
 * version, since, expires}, replaced atomically under the image lock
 * (versions_lock_image()); expired entries are pruned at each change.
 * At most PINS_MAX live pins per image, so a read token cannot make a
 * server keep unbounded history.
 *
 * Any thread; every call blocks on disk I/O.
 */
#ifndef VMFERRY_PINS_H
#define VMFERRY_PINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct versions;

#define PINS_MAX 256

struct pin {
	char id[VMF_LEASE_ID_HEX_LEN + 1];
	char holder[VMF_LEASE_HOLDER_MAX + 1];
	uint64_t version;
	int64_t since, expires;
};

struct pin_request {
	const char *holder;
	const char *id; /* the caller's pin, to renew; or NULL */
	uint64_t version;
	int64_t seconds; /* duration from now */
};

/* Pin (or renew, same id and version) version rq->version of name.
 * Returns 0 with the pin in *ret and *ret_renewed; -ENOENT if there is
 * no such image; -ESRCH if the version is not (or no longer) committed;
 * -ENOSPC if PINS_MAX live pins are held already; -EBADMSG if pins.json
 * is corrupt and cannot be read (it is then replaced: the pins it held
 * are lost, which only risks retention); an I/O -errno. */
int pin_acquire(struct versions *v, const char *name,
		const struct pin_request *rq, struct pin *ret,
		bool *ret_renewed);

/* Remove pin id from name.  0 and *ret_released (false if it was not
 * there or had expired), or an -errno. */
int pin_release(struct versions *v, const char *name, const char *id,
		bool *ret_released);

/* The versions named by live pins of name at time now: a new array
 * (maybe NULL when *ret_n is 0).  A missing pins.json is none; a
 * corrupt one -EBADMSG. */
int pin_versions(struct versions *v, const char *name, int64_t now,
		 uint64_t **ret, size_t *ret_n);

/* The live pins of name at time now (a new array), for the operator. */
int pin_list(struct versions *v, const char *name, int64_t now,
	     struct pin **ret, size_t *ret_n);

#endif
