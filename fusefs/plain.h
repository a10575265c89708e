/* SPDX-License-Identifier: MIT */
/* Plain servers: a version exported as files (`vmferry export`), served
 * by any static HTTPS server, CDN or FTP server (docs/protocol.md,
 * "Plain servers").
 *
 * Owns the mount-time conversation with such a server: the descriptor
 * (vmferry.json, parsed here with jansson), the whole manifest (checked
 * against the descriptor's SHA-256 and the user's --manifest-sha256),
 * redirects (followed here once, hop by hop, never by libcurl; the final
 * URLs are what every later request uses) and a probe of the data file
 * that tells whether the server honours Range.  After plain_open() the
 * mount reads blocks exactly as from vmferry-server, through the fetch
 * engine with an empty base_url and these whole URLs.
 *
 * Stateless; any thread.  Calls block on the network through fetch_run().
 */
#ifndef VMFERRY_PLAIN_H
#define VMFERRY_PLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "proto.h"

struct fetch;
struct remote_url;

/* True if url names a plain export, not a vmferry-server image: its
 * scheme is ftp:// or http://, or its path ends in ".json" or "/". */
bool plain_url_is_plain(const char *url);

/* True if url's transport authenticates the server (https://). */
bool plain_url_is_tls(const char *url);

/* Fill *ret for a plain URL: base (the URL without its query, for
 * display), host_port ("HOST_PORT-" and 12 hex digits of the URL's
 * SHA-256: each export gets its own local copy), name (the descriptor's
 * file name without ".json", or for "vmferry.json" or a URL ending in
 * "/" the directory's name).  Returns 0 or -EINVAL with a reason in
 * *ret_why (a static string). */
int plain_parse_url(const char *url, struct remote_url *ret,
		    const char **ret_why);

/* A copy's URL of either kind (for the tools that only find the copy:
 * discard, rekey): plain_parse_url() if plain_url_is_plain(), else
 * remote_parse_url().  Sets *ret_plain. */
int plain_or_remote_url(const char *url, struct remote_url *ret,
			bool *ret_plain, const char **ret_why);

struct plain_source {
	char data_url[VMF_URL_MAX];	/* final, after redirects */
	char manifest_url[VMF_URL_MAX]; /* final, after redirects */
	char name[VMF_NAME_MAX + 1];	/* the descriptor's "name" */
	struct manifest_header hdr;
	uint8_t *manifest; /* whole, verified; plain_source_fini() frees */
	size_t manifest_len;
	uint8_t manifest_sha256[VMF_HASH_LEN];
	/* The data URL honours Range; if not, no_range says what the
	 * server did instead (for the user). */
	bool ranges;
	char no_range[160];
};

/* Read the export at url: descriptor, manifest (whole), and a one-byte
 * range probe of the data file.  pin is the manifest's expected SHA-256
 * (--manifest-sha256) or NULL.  Returns 0, or -errno with one line for
 * the user in why (room for why_len): a fetch error (whose detail
 * carries the server's words: "HTTP 503: ..."), -EBADMSG (a descriptor
 * or manifest that does not parse or does not agree; a data file whose
 * length is not the image's), -EKEYREJECTED (the manifest's SHA-256 is
 * not pin), -ELOOP (more than VMF_EXPORT_REDIRECTS redirects), or
 * -EPROTO (a redirect from https:// to another scheme).  On success the
 * caller owns *ret (plain_source_fini()). */
int plain_open(struct fetch *f, const char *url, const uint8_t *pin,
	       struct plain_source *ret, char *why, size_t why_len);

void plain_source_fini(struct plain_source *s);

#endif
