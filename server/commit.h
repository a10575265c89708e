/* SPDX-License-Identifier: MIT */
/* Commit a manifest as the next version of an image: atomic (a version
 * appears whole or not at all, whatever crashes) and idempotent (a retry
 * with the same commit id gets the first answer).
 *
 * Commits to one image are serialised by flock() on images/NAME/lock,
 * across threads and processes.  Any thread; blocks on disk I/O and on
 * another commit to the same image.
 */
#ifndef VMFERRY_COMMIT_H
#define VMFERRY_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leases.h"

struct versions;

/* Base version meaning "whatever is current" (import). */
#define COMMIT_BASE_ANY UINT64_MAX

#define COMMIT_ID_MIN 16
#define COMMIT_ID_MAX 128

/* True if id is 16-128 characters of [A-Za-z0-9_-]. */
bool commit_id_valid(const char *id);

struct commit_request {
	const char *name;
	const char *commit_id; /* NULL: not retryable (import) */
	uint64_t base;	       /* or COMMIT_BASE_ANY */
	/* Leases: with check_lease, a commit presenting lease_id must hold
	 * the image's live lease, and one presenting none (NULL) is refused
	 * while anyone holds one.  import leaves check_lease false. */
	bool check_lease;
	const char *lease_id;
	const char *author; /* for the history (history.h); NULL: unknown */
	/* Retention after the commit (retention.h): the number of versions
	 * to keep unless policy.json says; 0: drop nothing (import). */
	uint64_t keep_versions;
};

struct commit_result {
	uint64_t version; /* committed (or, replayed, committed before) */
	bool replayed;	  /* the commit id was seen: nothing changed */
	uint64_t current; /* with -ESTALE */
	uint64_t missing; /* with -ENODATA: blocks the store lacks */
	/* With -ENODATA: the first distinct missing hashes, at most
	 * VMF_MISSING_LIST_MAX of them (missing_listed); owned, freed by
	 * commit_result_fini(). */
	uint8_t *missing_list;
	size_t missing_listed;
	/* With -EBUSY: whether a live lease holds the image, and which. */
	bool lease_live;
	struct lease lease;
};

/* Free what a result owns.  Safe on a zeroed result. */
void commit_result_fini(struct commit_result *res);

/* Commit the manifest in the temporary file tmp_path (open as fd, made
 * by store_mktemp()) as version current+1 of req->name, creating the
 * image if new.  The upload's version field is ignored and set to the
 * new number.  The temporary file is always consumed (renamed or
 * unlinked); fd stays the caller's.  Returns 0, or
 *   -EBADMSG  the manifest does not parse
 *   -ENODATA  it names blocks the store lacks (ret->missing, and the
 *             list: the caller must commit_result_fini(ret))
 *   -EBUSY    the lease check failed (ret->lease_live, ret->lease)
 *   -ESTALE   base is not current (ret->current)
 *   -EEXIST   the commit id was used for another image or manifest
 *   -EINVAL   an invalid name or commit id
 * or an I/O -errno.  ret is written on 0, -ENODATA, -EBUSY and -ESTALE.
 * A retry of a committed commit id is answered before the lease check,
 * so a lost reply can be retried even after the lease is gone. */
int commit_manifest(struct versions *v, const struct commit_request *req,
		    int fd, const char *tmp_path, struct commit_result *ret);

#endif
