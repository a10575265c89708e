/* SPDX-License-Identifier: MIT */
/* The write side of the API: upload the blocks the server lacks, commit
 * a manifest as the next version.  Shared by `vmferry publish` and the
 * mount's write-back.
 *
 * Stateless; call from one thread at a time per upload (it waits on its
 * own completions).  Blocks on the network through the fetch engine.
 */
#ifndef VMFERRY_UPLOAD_H
#define VMFERRY_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct fetch;
struct fetch_config;

/* Start a fetch engine for an uploading command (publish, push): cfg
 * carries cacert/insecure from the command line; base_url and token are
 * set here, with upload-sized timeouts and enough slots for the PUTs in
 * flight (the tool has warned about --insecure: tools/toolopts.c).
 * Returns fetch_new()'s result. */
int upload_fetch_new(struct fetch_config *cfg, const char *base_url,
		     const char *token, struct fetch **ret);

struct upload_block {
	const uint8_t *hash; /* VMF_HASH_LEN, borrowed; zero hashes skipped */
	const void *buf;     /* contents, borrowed */
	size_t len;
};

struct upload_stats {
	uint64_t uploaded; /* blocks sent */
	uint64_t present;  /* blocks the server already had */
	uint64_t bytes;	   /* bytes sent */
};

/* Ask which of blocks[0..n) the server lacks (POST /v1/blocks/missing,
 * in batches) and PUT those, several at once.  Adds to *st.  Returns 0,
 * -EBADMSG (a malformed answer), or a fetch error with one line of
 * detail in ret_why (room for 256 bytes). */
int upload_blocks(struct fetch *f, const struct upload_block *blocks, size_t n,
		  struct upload_stats *st, char *ret_why);

/* Commit the encoded manifest (buf, len) as the next version of name on
 * top of version base (0 for a new image), with lease_id if not NULL.
 * The commit id (commit_id, 32 hex digits, or a random one when NULL)
 * makes a retry after a lost answer safe: it is retried a few times with
 * the same id, and a caller that recorded the id can send the same
 * commit again later (pending.h).  An answer whose version is not
 * base + 1 is refused (-EBADMSG): its outcome is unknown.  Returns 0 and *ret_version;
 * -ESTALE when the server refuses it as a conflict (HTTP 409: stale base,
 * another holder's lease, a broken lease); or a fetch error.  ret_why
 * (256 bytes) says why. */
int upload_commit(struct fetch *f, const char *name, uint64_t base,
		  const void *buf, size_t len, const char *lease_id,
		  const char *commit_id, uint64_t *ret_version, char *ret_why);

#endif
