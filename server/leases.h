/* SPDX-License-Identifier: MIT */
/* Write leases: at most one writer per image.
 *
 * A lease is images/NAME/lease.json, replaced atomically, so it
 * survives a restart and `vmferry-server lease break` (another process)
 * takes effect at the server's next lease or commit request: the file
 * is read again each time, nothing is cached.  Changes (grant, renew,
 * release, break) happen under the image lock (versions_lock_image()),
 * the same one commits take, so a commit and a lease change never
 * interleave.  An expired lease is as good as none; its file stays
 * until the next grant or release replaces it.
 *
 * Any thread; every call blocks on disk I/O, and those that change a
 * lease on the image lock.
 */
#ifndef VMFERRY_LEASES_H
#define VMFERRY_LEASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto.h"

struct versions;

struct lease {
	char id[VMF_LEASE_ID_HEX_LEN + 1]; /* secret of the holder */
	char holder[VMF_LEASE_HOLDER_MAX + 1];
	char where[8]; /* VMF_LEASE_WHERE_LOCAL or _REMOTE */
	int64_t since; /* Unix time of the grant */
	int64_t expires;
	/* The version the holder is based on (its mount's base), kept by
	 * retention while the lease is live; 0: not said (lease.json
	 * written before this field existed, or a client that sends
	 * none). */
	uint64_t version;
};

/* True if the lease is in force at time now. */
static inline bool lease_live(const struct lease *l, int64_t now)
{
	return now < l->expires;
}

/* True if s is 1 to VMF_LEASE_HOLDER_MAX bytes without control
 * characters; true if s is "local" or "remote"; true if s looks like a
 * lease id (VMF_LEASE_ID_HEX_LEN lower-case hex digits). */
bool lease_holder_valid(const char *s);
bool lease_where_valid(const char *s);
bool lease_id_valid(const char *s);

/* The lease recorded for name, live or expired.  -ENOENT if none,
 * -EBADMSG if lease.json is corrupt. */
int lease_read(struct versions *v, const char *name, struct lease *ret);

struct lease_request {
	const char *holder;
	const char *where;
	const char *id;	  /* the caller's lease, to renew; or NULL */
	int64_t seconds;  /* duration from now */
	uint64_t version; /* the holder's base version; 0: not said (a
			   * renewal then keeps the one recorded) */
};

/* Grant a lease on an existing image, or renew the caller's live one
 * (same id and since, new expiry).  Returns 0 with the lease in *ret
 * and *ret_renewed; -EBUSY if someone else holds a live lease (*ret is
 * theirs); -ENOENT if there is no such image; an I/O -errno. */
int lease_acquire(struct versions *v, const char *name,
		  const struct lease_request *rq, struct lease *ret,
		  bool *ret_renewed);

/* Release the lease whose id is id.  Returns 0 (*ret_released false if
 * there was nothing live to release: a retry, or an expired lease);
 * -EBUSY if another live lease holds the image (*ret is it). */
int lease_release(struct versions *v, const char *name, const char *id,
		  struct lease *ret, bool *ret_released);

/* Remove the image's lease whatever it is (the administrator's break).
 * -ENOENT if there was none; *ret is the lease removed. */
int lease_break(struct versions *v, const char *name, struct lease *ret);

/* For commit.c, under the image lock: may a commit presenting lease id
 * (NULL: none) proceed at time now?  0 if yes; -EBUSY if not: id names
 * no live lease (broken or expired), or id is NULL and someone holds a
 * live lease.  *ret_held is the live lease, if any, and *ret_live says
 * whether there is one. */
int lease_check_commit(struct versions *v, const char *name, const char *id,
		       int64_t now, struct lease *ret_held, bool *ret_live);

/* {holder, where, since, expires[, version]} of l (never its id): a new
 * object; version only when known. */
json_t *lease_to_json(const struct lease *l);

/* "2024-05-01T10:00:00Z" into buf (at least 21 bytes). */
void lease_format_time(int64_t t, char *buf, size_t len);

#endif
