/* SPDX-License-Identifier: MIT */
/* Worker threads (see thread.h). */
#include <signal.h>

#include "thread.h"

int thread_start(pthread_t *ret, void *(*fn)(void *), void *arg,
		 const char *name)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(ret, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0)
		(void)pthread_setname_np(*ret, name); /* cosmetic */
	return r;
}
