/* SPDX-License-Identifier: MIT */
/* Failed authentication, rate limited per client address.
 *
 * After `max` failures from one address within `window` seconds, that
 * address is refused (429) for `window` seconds, whatever it presents.
 * Addresses are IPv4 addresses or IPv6 /64 prefixes (one host usually
 * holds a whole /64).  The table is bounded: when full, the entry
 * least recently failed is forgotten.  Any thread; one mutex inside,
 * held only for a table lookup.
 */
#ifndef VMFERRY_RATELIMIT_H
#define VMFERRY_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define RATELIMIT_MAX_DEFAULT	 20
#define RATELIMIT_WINDOW_DEFAULT 60
#define RATELIMIT_ENTRIES	 4096

struct ratelimit;

/* max 0 disables the limit (then ratelimit_new() returns NULL in
 * *ret, and the other functions accept NULL).  -ENOMEM. */
int ratelimit_new(unsigned max, unsigned window, struct ratelimit **ret);
void ratelimit_free(struct ratelimit *rl);

/* Seconds until addr may try again (0: it may now). */
unsigned ratelimit_check(struct ratelimit *rl, const struct sockaddr *addr);
/* Count one failure of addr.  True if this failure blocked it. */
bool ratelimit_fail(struct ratelimit *rl, const struct sockaddr *addr);

#endif
