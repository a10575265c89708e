/* SPDX-License-Identifier: MIT */
/* A local copy's lifecycle record: keep or ephemeral, and when it
 * expires (docs/client.md, "Lifecycle").
 *
 * DIR/lifecycle.json holds, in plain JSON so that `vmferry list` and
 * `vmferry purge` can read it without the user's key, the copy's URL,
 * version and size (for display) and its policy: keep or ephemeral, an
 * absolute expiry, a maximum time offline, the time of the last
 * successful contact with the server and the latest wall-clock time
 * seen.  The same record is also stored sealed under the copy's data key
 * ("sealed", hex; AAD "vmferry-lifecycle-v1" | cache id): with the key,
 * lifecycle_verify() detects any edit of the plain fields, and an edited
 * record is treated as expired.  Without the key, the plain fields are
 * all there is; an edit that extends them is caught at the next use that
 * has the key (mount, list or purge with the key file).
 *
 * Offline time is measured from last_contact to max(now, last_seen), so
 * setting the clock back does not give more time.
 *
 * Stateless; any thread.  Blocks on disk I/O.
 */
#ifndef VMFERRY_LIFECYCLE_H
#define VMFERRY_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define LIFECYCLE_URL_MAX 1024
/* status and list warn when less than this is left. */
#define LIFECYCLE_WARN_S (24 * 3600)

struct lifecycle {
	char url[LIFECYCLE_URL_MAX];
	uint64_t version, image_size;
	bool ephemeral;
	int64_t expires;       /* Unix time; 0: never */
	int64_t max_offline_s; /* 0: no limit */
	int64_t last_contact;  /* last successful contact with the server */
	int64_t last_seen;     /* latest wall-clock time seen */
	/* For display only (not sealed): the mount's counts when it last
	 * wrote the record. */
	uint64_t blocks_data, blocks_cached, blocks_dirty;
};

/* Read DIR/lifecycle.json's plain fields.  -ENOENT if there is none (a
 * copy made before lifecycles, or being created), -EBADMSG if it does not
 * parse. */
int lifecycle_read(const char *dir, struct lifecycle *ret);

/* Read and check the plain fields against the sealed copy.  0 and *ret;
 * -EBADMSG if they differ or the seal does not open (edited, or another
 * copy's record): treat as expired; -ENOENT as lifecycle_read(). */
int lifecycle_verify(const char *dir, const uint8_t data_key[CRYPTO_KEY_LEN],
		     const uint8_t cache_id[CRYPTO_CACHE_ID_LEN],
		     struct lifecycle *ret);

/* Write l (plain and sealed) atomically. */
int lifecycle_write(const char *dir, const struct lifecycle *l,
		    const uint8_t data_key[CRYPTO_KEY_LEN],
		    const uint8_t cache_id[CRYPTO_CACHE_ID_LEN]);

enum lifecycle_state {
	LIFECYCLE_OK,
	LIFECYCLE_EXPIRED,	    /* past the expiry date */
	LIFECYCLE_OFFLINE_TOO_LONG, /* max_offline_s since last contact */
};

/* The state of l at wall time now; *ret_left (may be NULL) is the
 * seconds left until the first limit bites (INT64_MAX: none; <= 0 when
 * not OK). */
enum lifecycle_state lifecycle_check(const struct lifecycle *l, int64_t now,
				     int64_t *ret_left);

/* One phrase for a state: "expired on 2026-12-01T00:00:00Z", "offline
 * for longer than 7d (last contact ...)", into buf. */
void lifecycle_describe(const struct lifecycle *l, enum lifecycle_state s,
			char *buf, size_t len);

/* "3d 4h", "5h 10m", "12m", or "never" for INT64_MAX, into buf. */
void lifecycle_format_left(int64_t left, char *buf, size_t len);

/* Destroy the copy in dir: the wrapped data key first (keys_destroy()),
 * then every file, then dir.  0 or the first -errno. */
int lifecycle_destroy(const char *dir);

#endif
