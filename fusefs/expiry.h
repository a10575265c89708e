/* SPDX-License-Identifier: MIT */
/* The mounted copy's lifecycle, watched (docs/client.md, "Lifecycle").
 *
 * Owns one thread.  Every interval it asks the server for the image's
 * metadata (its policy may have changed; an answer is a successful
 * contact), moves the record's last_contact to the latest successful
 * request and last_seen to now, writes the record (lifecycle.h), and
 * checks it.  Once the copy is expired or has been offline too long it
 * calls cfg->expired() once, from its thread, and checks no more.
 */
#ifndef VMFERRY_EXPIRY_H
#define VMFERRY_EXPIRY_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"
#include "lifecycle.h"

struct fetch;
struct expiry;

struct expiry_config {
	const char *dir;		  /* the copy's directory, copied */
	const char *name;		  /* image name, copied */
	struct lifecycle lc;		  /* the record as mounted */
	uint8_t data_key[CRYPTO_KEY_LEN]; /* copied; cleansed at stop */
	uint8_t cache_id[CRYPTO_CACHE_ID_LEN];
	uint64_t interval_s; /* >= 1 */
	/* A plain export (plain.h): no server policy to ask for; the
	 * record is still kept and checked. */
	bool no_policy;
	/* Called once when the copy expires, with the state and a phrase
	 * saying why (lifecycle_describe()). */
	void (*expired)(void *opaque, enum lifecycle_state s, const char *why);
	/* Fills the record's display counts before each write (may be
	 * NULL). */
	void (*counts)(void *opaque, struct lifecycle *lc);
	void *opaque;
};

/* Start watching; f is borrowed and must outlive the watcher. */
int expiry_start(const struct expiry_config *cfg, struct fetch *f,
		 struct expiry **ret);

/* Stop and join.  NULL is a no-op. */
void expiry_stop(struct expiry *e);

/* The record as last written.  Any thread. */
void expiry_get(struct expiry *e, struct lifecycle *ret);

#endif
