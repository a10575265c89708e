/* SPDX-License-Identifier: MIT */
/* The client side of the vmferry HTTP API (docs/protocol.md): URLs, image
 * metadata, manifest headers.  JSON is parsed here and nowhere else on
 * the client.
 *
 * Stateless; any thread.  Calls block on the network through fetch_run().
 */
#ifndef VMFERRY_REMOTE_H
#define VMFERRY_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "manifest.h"
#include "proto.h"

struct fetch;

/* An image URL split: "https://HOST:PORT/NAME". */
struct remote_url {
	char base[512];		     /* "https://HOST:PORT" */
	char host_port[256];	     /* "HOST_PORT", safe as a file name */
	char name[VMF_NAME_MAX + 1]; /* image name */
};

/* Parse an image URL.  Returns 0 or -EINVAL with a reason in *ret_why
 * (a static string). */
int remote_parse_url(const char *url, struct remote_url *ret,
		     const char **ret_why);

struct remote_image {
	uint64_t version; /* current version */
	uint64_t size;
	uint32_t block_size;
	uint64_t manifest_size;
	/* "manifest_sha256": what the current version's manifest must hash
	 * to (the metadata comes from the server itself, over TLS; the
	 * manifest may come through caches). */
	bool has_manifest_sha256;
	uint8_t manifest_sha256[VMF_HASH_LEN];
	/* The image policy's lifecycle of local copies (docs/server.md,
	 * policy.json): "expires" (RFC 3339 UTC or Unix time), "max_offline"
	 * (a duration: "7d", or seconds) and "local_copy" ("keep" or
	 * "ephemeral"); 0/false when not set. */
	int64_t expires;
	uint64_t max_offline_s;
	bool ephemeral;
	/* The policy's "vm": {"memory": "1G" or MiB, "cpus": N}, what a
	 * run of the image uses unless told otherwise; 0 when not set or
	 * not valid (a run then uses its defaults). */
	uint64_t vm_memory_mib;
	unsigned vm_cpus;
	/* The live lease ("lease" in the metadata), if any. */
	bool leased;
	char lease_holder[VMF_LEASE_HOLDER_MAX + 1];
	char lease_where[8]; /* VMF_LEASE_WHERE_LOCAL or _REMOTE */
	int64_t lease_since, lease_expires;
};

/* GET /v1/images/NAME.  Returns 0, a fetch error (errmsg in *ret_why,
 * which has room for 256 bytes), or -EBADMSG if the JSON does not parse,
 * lacks a field, or its policy's lifecycle fields are invalid (the
 * client then refuses the image: failing closed). */
int remote_get_image(struct fetch *f, const char *name,
		     struct remote_image *ret, char *ret_why);

/* GET /v1/images/NAME/versions/N: version's sizes, manifest_size and
 * manifest_sha256 (from the server itself, like the image's metadata)
 * into *ret; the policy and lease fields stay 0.  Returns 0, a fetch
 * error (-ENOENT: no such version, or a server without the route), or
 * -EBADMSG (malformed, another version, or no manifest_sha256), with
 * the detail in *ret_why (room for 256 bytes).  Blocks. */
int remote_get_version(struct fetch *f, const char *name, uint64_t version,
		       struct remote_image *ret, char *ret_why);

/* GET version img->version's manifest whole (hdr: its header, as
 * remote_get_manifest_header() checked it) and check it: its SHA-256
 * against img->manifest_sha256, its header against hdr.  Returns 0 with
 * a new buffer of the manifest's bytes in *ret (caller frees) and its
 * length in *ret_len; a fetch error; or -EBADMSG (the metadata has no
 * manifest_sha256, or the manifest does not match it or hdr), with a
 * reason in *ret_why (room for 256 bytes).  Blocks. */
int remote_get_manifest(struct fetch *f, const char *name,
			const struct remote_image *img,
			const struct manifest_header *hdr, uint8_t **ret,
			size_t *ret_len, char *ret_why);

/* One image of GET /v1/images. */
struct remote_entry {
	char name[VMF_NAME_MAX + 1];
	struct remote_image img; /* version, size, block_size, lease only */
};

/* GET /v1/images: the images the token can read, with their live
 * leases.  Returns 0 with a new array (caller frees) of *ret_n entries,
 * a fetch error (errmsg in ret_why, 256 bytes) or -EBADMSG. */
int remote_list_images(struct fetch *f, struct remote_entry **ret,
		       size_t *ret_n, char *ret_why);

/* GET the 64-byte header of a version's manifest and check it against
 * the metadata (size, block size, version).  Returns 0, a fetch error,
 * or -EBADMSG (does not parse or does not match; *ret_why says how). */
int remote_get_manifest_header(struct fetch *f, const char *name,
			       const struct remote_image *img,
			       struct manifest_header *ret, char *ret_why);

/* Paths of a version's data and manifest into buf (room for len). */
void remote_data_path(const char *name, uint64_t version, char *buf,
		      size_t len);
void remote_manifest_path(const char *name, uint64_t version, char *buf,
			  size_t len);

/* PUT the first-read order of a session, blocks[0..n) (1 to
 * VMF_PROFILE_MAX_BLOCKS distinct indices), as a boot profile of
 * version (docs/protocol.md, "Boot profiles"); the server merges it.
 * A profile is a hint: the request is given up at deadline_ns (a
 * now_ns() time; 0 for none), queued or in flight.  Returns 0 or a
 * fetch error (detail in *ret_why, 256 bytes). */
int remote_put_profile(struct fetch *f, const char *name, uint64_t version,
		       const uint64_t *blocks, size_t n, uint64_t deadline_ns,
		       char *ret_why);

/* GET the boot profile to prefetch for version: the server answers the
 * merged profile of version, or of the nearest older version that has
 * one (*ret_from).  Entries at or past nblocks are left out, and all of
 * them if the profile's block size is not block_size (another layout).
 * Returns 0 and a new array in *ret (caller frees; NULL when *ret_n is
 * 0), -ENOENT (no profile), -EBADMSG (a malformed answer) or a fetch
 * error; *ret_why (256 bytes) says more. */
int remote_get_profile(struct fetch *f, const char *name, uint64_t version,
		       uint32_t block_size, uint64_t nblocks, uint64_t **ret,
		       size_t *ret_n, uint64_t *ret_from, char *ret_why);

/* The bearer token: from file (trailing white space stripped), or from
 * $VMFERRY_TOKEN when file is NULL.  Returns 0 and a new string in *ret
 * (caller cleanses and frees), -ENOKEY (no token given), -EINVAL (empty,
 * longer than VMF_TOKEN_MAX or holding white space), or -errno reading
 * the file. */
int remote_read_token(const char *file, char **ret);

/* Turn a fetch error into the sentence a user needs (static string),
 * e.g. -EPERM -> "the server's certificate does not verify (use --cacert
 * FILE to trust it, or --insecure)". */
const char *remote_strerror(int r);

/* Print the --insecure warning: one "WARNING" line straight on stderr
 * (whatever the log's sink), each time a command uses --insecure. */
void remote_warn_insecure(void);

#endif
