/* SPDX-License-Identifier: MIT */
/* Protocol constants shared by client and server: paths, headers, limits.
 *
 * Constants only.  docs/protocol.md is the prose version of this file;
 * change both together.
 */
#ifndef VMFERRY_PROTO_H
#define VMFERRY_PROTO_H

/* API prefix; every route lives below it. */
#define VMF_API_PREFIX "/v1"

/* Routes (NAME is an image name, N a decimal version number):
 *   GET  /v1/images                          JSON list readable by the token
 *   GET  /v1/images/NAME                     JSON metadata
 *   GET  /v1/images/NAME/versions/N/manifest binary manifest (Range ok)
 *   GET  /v1/images/NAME/versions/N/data     flat image bytes (Range ok)
 *   POST /v1/blocks/missing                  body: N*32 raw hashes; reply:
 *                                            the subset the store lacks
 *   PUT  /v1/blocks/HEX                      one block; the server checks
 *                                            that SHA-256(body) == HEX
 *   POST /v1/images/NAME/versions            body: manifest; commits the
 *                                            next version (write grant)
 *   GET  /v1/images/NAME/versions            JSON version history
 *   POST /v1/images/NAME/lease               JSON body; take or renew the
 *                                            image's write lease
 *   DELETE /v1/images/NAME/lease             release it (Vmferry-Lease-Id)
 *   PUT  /v1/images/NAME/versions/N/profile  JSON first-read order of a
 *                                            session; merged (read grant)
 *   GET  /v1/images/NAME/versions/N/profile  the merged boot profile of N
 *                                            or of the nearest older version
 *   GET  /v1/stats                           JSON counters (admin)
 */
#define VMF_PATH_IMAGES	 VMF_API_PREFIX "/images"
#define VMF_PATH_BLOCKS	 VMF_API_PREFIX "/blocks"
#define VMF_PATH_STATS	 VMF_API_PREFIX "/stats"
#define VMF_SEG_VERSIONS "versions"
#define VMF_SEG_MANIFEST "manifest"
#define VMF_SEG_DATA	 "data"
#define VMF_SEG_MISSING	 "missing"
#define VMF_SEG_LEASE	 "lease"
#define VMF_SEG_PINS	 "pins"
#define VMF_SEG_PROFILE	 "profile"
#define VMF_SEG_VM	 "vm"
#define VMF_SEG_CONSOLE	 "console"
#define VMF_SEG_VNC	 "vnc"
#define VMF_SEG_TICKET	 "ticket"
#define VMF_SEG_ACCESS	 "access"

/* Request headers. */
#define VMF_HDR_COMMIT_ID "Vmferry-Commit-Id"	 /* idempotent commit key */
#define VMF_HDR_BASE	  "Vmferry-Base-Version" /* commit on top of N */
#define VMF_HDR_LEASE	  "Vmferry-Lease-Id"	 /* commit/release under it */
#define VMF_HDR_PIN	  "Vmferry-Pin-Id"	 /* the pin to release */

/* Leases: one writer per image. */
#define VMF_LEASE_ID_HEX_LEN	  32	     /* 16 random bytes, hex */
#define VMF_LEASE_HOLDER_MAX	  128	     /* bytes of "holder" */
#define VMF_LEASE_SECONDS_DEFAULT (4 * 3600) /* unless policy/serve say */
#define VMF_LEASE_WHERE_LOCAL	  "local"
#define VMF_LEASE_WHERE_REMOTE	  "remote"

/* Boot profiles: at most this many blocks in an upload and in the merged
 * profile; an upload's body is at most VMF_PROFILE_BODY_MAX bytes (room
 * for the largest list of the largest indices). */
#define VMF_PROFILE_MAX_BLOCKS 65536
#define VMF_PROFILE_BODY_MAX   (1u << 20)

/* A commit naming blocks the store lacks lists at most this many. */
#define VMF_MISSING_LIST_MAX 1000

/* Block size: a power of two within these bounds. */
#define VMF_BLOCK_SIZE_DEFAULT (64u * 1024)
#define VMF_BLOCK_SIZE_MIN     (4u * 1024)
#define VMF_BLOCK_SIZE_MAX     (4u * 1024 * 1024)

/* Image names: [A-Za-z0-9._-], not starting with '.', at most this long. */
#define VMF_NAME_MAX 64

/* Largest image the protocol accepts (16 TiB). */
#define VMF_IMAGE_SIZE_MAX (16ull << 40)

/* SHA-256. */
#define VMF_HASH_LEN	 32
#define VMF_HASH_HEX_LEN 64

/* Limits on what either side accepts from the network. */
#define VMF_JSON_MAX	       (1u << 20) /* any JSON body */
#define VMF_MISSING_MAX_HASHES 65536	  /* hashes per /blocks/missing */
#define VMF_TOKEN_MAX	       256	  /* bearer token length */

/* A version exported for plain servers (`vmferry export`; docs/protocol.md,
 * "Plain servers"): DIR/vmferry.json names DIR/N/data and DIR/N/manifest. */
#define VMF_EXPORT_DESCRIPTOR "vmferry.json"
#define VMF_EXPORT_FORMAT     1		 /* its "vmferry_export" field */
#define VMF_EXPORT_DATA	      "data"	 /* DIR/N/data: the flat image */
#define VMF_EXPORT_MANIFEST   "manifest" /* DIR/N/manifest */
#define VMF_EXPORT_REDIRECTS  5		 /* hops followed, once, at mount */
#define VMF_URL_MAX	      2048	 /* a plain server's URLs */

/* Default server port. */
#define VMF_DEFAULT_PORT 8443

#endif
