/* SPDX-License-Identifier: MIT */
/* Hands a session's boot profile (profile.h) to the server as a profile
 * of the mounted version (docs/client.md, "Boot profiles"): once the
 * first `window_s` seconds of the session (the boot) have passed, or at
 * the end of a shorter session (profile_upload_stop()).  Recording stops
 * at the upload, so what a long session reads later is not mistaken for
 * the boot.  Read-only mounts upload too: the route needs read only.
 *
 * Owns one thread, which sleeps until the window ends, then uploads
 * once.  A failed upload is logged as a warning and not retried (a
 * profile is a hint).  Start and stop from one thread (the mount's).
 */
#ifndef VMFERRY_PROFILE_UPLOAD_H
#define VMFERRY_PROFILE_UPLOAD_H

#include <stdbool.h>
#include <stdint.h>

struct fetch;
struct profile;
struct profile_upload;

struct profile_upload_config {
	const char *name;  /* image name, copied */
	uint64_t version;  /* the version the session reads */
	uint64_t window_s; /* upload after this long; 0: only at the end */
};

/* Start the thread; p and f are borrowed and must outlive it.  Returns
 * 0, -ENOMEM or -errno from pthread_create. */
int profile_upload_start(const struct profile_upload_config *cfg,
			 struct profile *p, struct fetch *f,
			 struct profile_upload **ret);

/* Stop and join the thread; then, if nothing was uploaded yet and
 * `upload` is true, close the recording and upload it now (blocks on
 * the network).  NULL is a no-op. */
void profile_upload_stop(struct profile_upload *u, bool now);

/* Whether the profile went up (status).  Any thread. */
bool profile_upload_done(struct profile_upload *u);

#endif
