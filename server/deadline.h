/* SPDX-License-Identifier: MIT */
/* Slow clients are cut off: each request must arrive whole (its head,
 * then its body) within `timeout` seconds of the start of its
 * connection or of the previous response on it, plus one second for
 * every `min_rate` bytes of body received.  A watchdog thread checks
 * every connection once a second and shuts down the socket of one past
 * its deadline; libmicrohttpd then closes it.  While a response is
 * being sent no deadline runs (libmicrohttpd's idle timeout does).
 *
 * libmicrohttpd gives no callback while a head trickles in, hence the
 * thread.  It reaches a socket only under d->lock, and libmicrohttpd
 * notifies a connection's close (deadline_conn_end()) before it closes
 * the socket, so the watchdog never shuts down a reused descriptor.
 * Any thread may call the deadline_conn_* functions.
 */
#ifndef VMFERRY_DEADLINE_H
#define VMFERRY_DEADLINE_H

#include <stdint.h>

#define DEADLINE_TIMEOUT_DEFAULT  60	      /* seconds */
#define DEADLINE_MIN_RATE_DEFAULT (16u << 10) /* bytes per second */
#define DEADLINE_ADDR_LEN	  64	      /* client address as text */

struct deadline;
struct deadline_conn;

/* Start the watchdog.  timeout 0 disables it (*ret is then NULL and
 * every function accepts NULL).  -ENOMEM, -EAGAIN. */
int deadline_start(unsigned timeout, uint64_t min_rate, struct deadline **ret);
/* Stop and join the watchdog; the connections must have ended. */
void deadline_stop(struct deadline *d);

/* A connection on socket fd from addr (text, for the log) opened: its
 * first request's time starts.  NULL if d is NULL or out of memory
 * (then it is not watched). */
struct deadline_conn *deadline_conn_begin(struct deadline *d, int fd,
					  const char *addr);
/* body bytes arrived. */
void deadline_conn_body(struct deadline_conn *c, uint64_t len);
/* The request is in whole: no deadline until the response is sent. */
void deadline_conn_received(struct deadline_conn *c);
/* The response is sent: the next request's time starts. */
void deadline_conn_next(struct deadline_conn *c);
/* The connection is closing (before its socket is closed); frees c. */
void deadline_conn_end(struct deadline_conn *c);

#endif
