/* SPDX-License-Identifier: MIT */
/* Mutex and condition variable calls that abort on failure (STYLE.md 4:
 * a failed mutex call is a broken program, not an error to handle).
 *
 * Header only; any thread.
 */
#ifndef VMFERRY_MUTEX_H
#define VMFERRY_MUTEX_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline void mutex_lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)
		abort();
}

static inline void mutex_unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		abort();
}

static inline void cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	if (pthread_cond_wait(c, m) != 0)
		abort();
}

/* Wait on c (a default, CLOCK_REALTIME condition) for at most ns
 * nanoseconds.  Returns false when the time ran out, true when woken
 * (which may be spurious: callers re-check their condition). */
static inline bool cond_wait_ns(pthread_cond_t *c, pthread_mutex_t *m,
				uint64_t ns)
{
	struct timespec ts;
	uint64_t t;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = (uint64_t)ts.tv_nsec + ns;
	ts.tv_sec += (time_t)(t / 1000000000ull);
	ts.tv_nsec = (long)(t % 1000000000ull);
	r = pthread_cond_timedwait(c, m, &ts);
	if (r != 0 && r != ETIMEDOUT)
		abort();
	return r == 0;
}

static inline void cond_signal(pthread_cond_t *c)
{
	if (pthread_cond_signal(c) != 0)
		abort();
}

static inline void cond_broadcast(pthread_cond_t *c)
{
	if (pthread_cond_broadcast(c) != 0)
		abort();
}

#endif
