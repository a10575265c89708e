/* SPDX-License-Identifier: MIT */
/* Images and their versions: manifests, `current`, policies.
 *
 * Layout under the server directory DIR:
 *   images/NAME/versions/N.manifest  immutable once N <= current
 *   images/NAME/current              decimal N, replaced atomically
 *   images/NAME/policy.json          optional, written by the operator
 *   images/NAME/lock                 flock()ed by a commit (commit.h)
 * A version exists only once `current` says so: a manifest file numbered
 * above current is a leftover of a crashed commit and is never served.
 * A version below current may be dropped by retention (retention.h):
 * its manifest is unlinked and it is then -ENOENT like any unknown one.
 * Readers take no lock.  Any thread; every call may block on disk I/O.
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

/* Open the images of server directory dir; s is borrowed and must
 * outlive v. */
int versions_open(const char *dir, struct store *s, struct versions **ret);
void versions_free(struct versions *v);

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

/* For commit.c, which writes what this module reads. */

/* A new path "DIR/images/NAME" + rest; -EINVAL if name is not valid
 * (it becomes a path). */
int versions_image_path(struct versions *v, const char *name, const char *rest,
			char **ret);
/* A new path "DIR/images/NAME/versions/N.manifest". */
int versions_manifest_path(struct versions *v, const char *name, uint64_t n,
			   char **ret);
/* Read and check the header of a manifest file of size bytes: -EBADMSG
 * if it does not parse or size is not the one it gives. */
int versions_read_header(int fd, uint64_t size, struct manifest_header *ret);
/* SHA-256 of a manifest file of size bytes; with zero_version, as if its
 * version field were 0 (the digest of what was uploaded). */
int versions_digest(int fd, uint64_t size, bool zero_version,
		    uint8_t out[VMF_HASH_LEN]);
/* flock(images/NAME/lock), creating images/NAME/versions (durably) if
 * the image is new; returns the locked fd in *ret_fd (closing it
 * unlocks).  Serialises commits and lease changes to one image across
 * threads and processes.  Blocks until the lock is free. */
int versions_lock_image(struct versions *v, const char *name, int *ret_fd);
/* The same for an image that exists already: -ENOENT (never created)
 * if name has no current version. */
int versions_lock_existing(struct versions *v, const char *name, int *ret_fd);
/* The store v was opened with (borrowed). */
struct store *versions_store(struct versions *v);
/* "DIR/commits" (borrowed). */
const char *versions_commits_dir(struct versions *v);

#endif
