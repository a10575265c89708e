/* SPDX-License-Identifier: MIT */
/* Starting a worker thread the way every vmferry thread starts.
 *
 * Signals are the main thread's business: the new thread starts with all
 * of them blocked (so SIGINT/SIGTERM reach libfuse's or the server's
 * handler, never a worker), and it gets a name for top -H and gdb.
 */
#ifndef VMFERRY_THREAD_H
#define VMFERRY_THREAD_H

#include <pthread.h>

/* pthread_create(ret, fn, arg) with every signal blocked in the new
 * thread, named name (at most 15 characters; cosmetic).  Returns 0 or
 * -errno; the caller's signal mask is unchanged. */
int thread_start(pthread_t *ret, void *(*fn)(void *), void *arg,
		 const char *name);

#endif
