/* SPDX-License-Identifier: MIT */
/* Mutex and condition variable calls that abort on failure (STYLE.md 4:
 * a failed mutex call is a broken program, not an error to handle).
 *
 * Header only; any thread.
 */
#ifndef VMFERRY_MUTEX_H
#define VMFERRY_MUTEX_H

#include <pthread.h>
#include <stdlib.h>

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
