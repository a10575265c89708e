/* SPDX-License-Identifier: MIT */
/* Images and their versions: manifests, `current`, atomic commit.
 *
 * Layout under the server directory DIR:
 *   images/NAME/versions/N.manifest  immutable once N <= current
 *   images/NAME/current              decimal N, replaced atomically
 *   images/NAME/policy.json          optional, written by the operator
 *   images/NAME/lock                 flock()ed by a commit
 *   commits/ID                       record of a commit, for retries
 * A version exists only once `current` says so: a manifest file numbered
 * above current is a leftover of a crashed commit and is never served.
 *
 * Commits to one image are serialised by flock() on images/NAME/lock,
 * which holds across threads (each opens its own file description) and
 * across processes (`vmferry-server import` next to `serve`).  Readers
 * take no lock.  Any thread; every call may block on disk I/O, and
 * versions_commit() also on another commit to the same image.
 */
#ifndef VMFERRY_VERSIONS_H
#define VMFERRY_VERSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "manifest.h"
#include "proto.h"

struct store;
struct versions;

/* Base version meaning "whatever is current" (import). */
#define VERSIONS_BASE_ANY UINT64_MAX

#define VERSIONS_COMMIT_ID_MIN 16
#define VERSIONS_COMMIT_ID_MAX 128

/* Open the images of server directory dir; s is borrowed and must
 * outlive v. */
int versions_open(const char *dir, struct store *s, struct versions **ret);
void versions_free(struct versions *v);

/* True if id is 16-128 characters of [A-Za-z0-9_-]. */
bool versions_commit_id_valid(const char *id);

/* Current version of an image: 0, -ENOENT (no such image), -EINVAL (bad
 * name) or -EBADMSG (a corrupt `current` file). */
int versions_current(struct versions *v, const char *name, uint64_t *ret);

/* Names of every image that has a current version, sorted.  The array
 * and its strings are new; free with versions_names_free(). */
int versions_names(struct versions *v, char ***ret_names, size_t *ret_n);
void versions_names_free(char **names, size_t n);

/* Committed version numbers of an image, ascending (a new array). */
int versions_numbers(struct versions *v, const char *name, uint64_t **ret,
		     size_t *ret_n);

struct version_info {
	struct manifest_header hdr;
	uint64_t manifest_size;	      /* bytes of the manifest file */
	uint8_t sha256[VMF_HASH_LEN]; /* of the manifest file: the ETag */
};

/* Open version n's manifest for reading; returns a new fd (caller
 * closes) and fills *ret (ret->sha256 only with want_sha256).  -ENOENT
 * if n is not a committed version of name, -EBADMSG if the file is
 * corrupt.  The SHA-256 is computed on first use and cached (versions
 * are immutable). */
int versions_open_manifest(struct versions *v, const char *name, uint64_t n,
			   bool want_sha256, struct version_info *ret);

/* The image's policy.json as a new JSON object reference ({} when
 * there is none).  -EBADMSG if the file is not a JSON object. */
int versions_policy(struct versions *v, const char *name, json_t **ret);

struct commit_request {
	const char *name;
	const char *commit_id; /* NULL: not retryable (import) */
	uint64_t base;	       /* or VERSIONS_BASE_ANY */
};

struct commit_result {
	uint64_t version; /* committed (or, replayed, committed before) */
	bool replayed;	  /* the commit id was seen: nothing changed */
	uint64_t current; /* with -ESTALE */
	uint64_t missing; /* with -ENODATA: blocks the store lacks */
};

/* Commit the manifest in the temporary file tmp_path (open as fd, made
 * by store_mktemp()) as version current+1 of req->name, creating the
 * image if new.  The upload's version field is ignored and set to the
 * new number.  The temporary file is always consumed (renamed or
 * unlinked); fd stays the caller's.  Returns 0, or
 *   -EBADMSG  the manifest does not parse
 *   -ENODATA  it names blocks the store lacks (ret->missing)
 *   -ESTALE   base is not current (ret->current)
 *   -EEXIST   the commit id was used for another image or manifest
 * or an I/O -errno.  ret is written on 0, -ENODATA and -ESTALE. */
int versions_commit(struct versions *v, const struct commit_request *req,
		    int fd, const char *tmp_path, struct commit_result *ret);

#endif
