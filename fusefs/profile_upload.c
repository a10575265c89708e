/* SPDX-License-Identifier: MIT */
/* Boot-profile upload.  See profile_upload.h.
 *
 * Threading: the upload thread and the mount's thread share u->stop and
 * u->state under u->lock; whoever moves state from PU_WAITING to
 * PU_UPLOADING does the one upload, without the lock held.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "log.h"
#include "mutex.h"
#include "thread.h"
#include "util.h"

#include "profile.h"
#include "profile_upload.h"
#include "remote.h"

enum pu_state {
	PU_WAITING,
	PU_UPLOADING,
	PU_DONE, /* uploaded, or given up */
};

struct profile_upload {
	char *name;	      /* set before the thread starts */
	uint64_t version;     /* set before the thread starts */
	uint64_t window_s;    /* set before the thread starts */
	struct profile *prof; /* borrowed */
	struct fetch *fetch;  /* borrowed */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* protects stop, state, uploaded */
	pthread_cond_t cond;  /* stop set */
	bool stop;
	enum pu_state state;
	bool uploaded;
};

/* Claim the one upload: true if the caller is to do it. */
static bool claim(struct profile_upload *u)
{
	bool mine;

	mutex_lock(&u->lock);
	mine = u->state == PU_WAITING;
	if (mine)
		u->state = PU_UPLOADING;
	mutex_unlock(&u->lock);
	return mine;
}

/* How long a profile upload may take: a hint must not hold up an
 * unmount (or the upload thread's join) behind a slow server. */
#define PU_SESSION_TIMEOUT_NS (60ull * 1000000000ull)
#define PU_UNMOUNT_TIMEOUT_NS (10ull * 1000000000ull)

/* Close the recording and PUT it, giving up after timeout_ns; the
 * caller claimed the upload. */
static void upload(struct profile_upload *u, const char *when,
		   uint64_t timeout_ns)
{
	_cleanup_free_ uint64_t *blocks = NULL;
	bool ok = false;
	char why[256];
	size_t n = 0;
	int r;

	r = profile_close(u->prof, &blocks, &n);
	if (r < 0) {
		log_warn_errno(r, "%s: boot profile: %m", u->name);
	} else if (n == 0) {
		log_debug(LOG_CAT_HYDRATE, "%s: no blocks read: no profile",
			  u->name);
	} else {
		r = remote_put_profile(u->fetch, u->name, u->version, blocks, n,
				       now_ns() + timeout_ns, why);
		if (r < 0)
			log_warn("%s: uploading the boot profile of version "
				 "%" PRIu64 " (%zu blocks, %s): %s",
				 u->name, u->version, n, when, why);
		else
			log_info("%s: boot profile of version %" PRIu64
				 " uploaded (%zu blocks, %s)",
				 u->name, u->version, n, when);
		ok = r == 0;
	}
	mutex_lock(&u->lock);
	u->state = PU_DONE;
	u->uploaded = ok;
	mutex_unlock(&u->lock);
}

static void *upload_thread(void *arg)
{
	struct profile_upload *u = arg;
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)u->window_s;
	mutex_lock(&u->lock);
	while (!u->stop &&
	       pthread_cond_timedwait(&u->cond, &u->lock, &until) != ETIMEDOUT)
		;
	stop = u->stop;
	mutex_unlock(&u->lock);
	if (!stop && claim(u))
		upload(u, "after the first seconds of the session",
		       PU_SESSION_TIMEOUT_NS);
	return NULL;
}

int profile_upload_start(const struct profile_upload_config *cfg,
			 struct profile *p, struct fetch *f,
			 struct profile_upload **ret)
{
	struct profile_upload *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return -ENOMEM;
	u->name = strdup(cfg->name);
	if (!u->name) {
		free(u);
		return -ENOMEM;
	}
	u->version = cfg->version;
	u->window_s = cfg->window_s;
	u->prof = p;
	u->fetch = f;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	if (u->window_s) {
		r = thread_start(&u->thread, upload_thread, u, "vmf-profile");
		if (r < 0) {
			profile_upload_stop(u, false);
			return r;
		}
		u->started = true;
	}
	*ret = u;
	return 0;
}

void profile_upload_stop(struct profile_upload *u, bool now)
{
	if (!u)
		return;
	if (u->started) {
		mutex_lock(&u->lock);
		u->stop = true;
		cond_signal(&u->cond);
		mutex_unlock(&u->lock);
		pthread_join(u->thread, NULL);
	}
	if (now && claim(u))
		upload(u, "at unmount", PU_UNMOUNT_TIMEOUT_NS);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	free(u->name);
	free(u);
}

bool profile_upload_done(struct profile_upload *u)
{
	bool done;

	if (!u)
		return false;
	mutex_lock(&u->lock);
	done = u->uploaded;
	mutex_unlock(&u->lock);
	return done;
}
