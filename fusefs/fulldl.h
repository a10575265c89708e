/* SPDX-License-Identifier: MIT */
/* Full download: one GET of a version's whole data file into the cache.
 *
 * The fallback for a plain server that cannot serve ranges (it answers
 * a Range request with 200, or without a length): the file is streamed
 * through the fetch engine (fetch_req.sink), cut into blocks, and every
 * block is verified against the manifest before it is stored
 * (image_store_fetched); zero blocks must arrive as zeros and are not
 * stored.  A block that fails, a file of the wrong length, or a
 * transfer error stops the download: nothing unverified is ever kept.
 *
 * Runs on the caller's thread (it waits in fetch_run()) while the
 * sink runs on the fetch thread; call it when nothing else uses the
 * engine (at mount, before the file is visible), as the sink holds up
 * other transfers while it hashes.
 */
#ifndef VMFERRY_FULLDL_H
#define VMFERRY_FULLDL_H

#include <stddef.h>
#include <stdint.h>

struct fetch;
struct image;

/* Download url (a whole URL: the engine's base_url is empty) into im,
 * whose manifest must be loaded whole.  Draws a progress bar when stderr
 * is a terminal.  Returns 0, -EBADMSG (a block does not match the
 * manifest, or the file's length is not the image's; *why says which),
 * or a fetch error (*why holds its detail).  why has room for why_len. */
int fulldl_run(struct image *im, struct fetch *f, const char *url, char *why,
	       size_t why_len);

#endif
