/* SPDX-License-Identifier: MIT */
/* How much of the link background requests may take: the fetch engine's
 * rule for giving way to a booting guest.
 *
 * A pure state machine on the fetch engine's own events (a demand
 * request starts or ends, body bytes are delivered) and timestamps
 * (now_ns() values passed in, so tests drive it with made-up times).
 * It holds no lock and starts no thread: the fetch thread owns one.
 *
 * The rule (why, in bgshare.c): while demand is recent, background gets
 * one request at a time and at most BGSHARE_DIVISOR-th of the fastest
 * delivery rate seen (paced by the engine's token bucket); "recent" is
 * in flight, or ended less than a quiet time ago, and the quiet time
 * grows with how often demand bursts come back (3x the average gap
 * between bursts, from BGSHARE_QUIET_MIN_NS to BGSHARE_QUIET_MAX_NS).
 * Otherwise background may use max_background slots at the user's
 * --max-rate (0: unlimited).  For BGSHARE_RECENT_NS after a burst of
 * demand that followed a gap, the limit also says "recent": background
 * should ask for short ranges.
 */
#ifndef VMFERRY_BGSHARE_H
#define VMFERRY_BGSHARE_H

#include <stdbool.h>
#include <stdint.h>

#define BGSHARE_QUIET_MIN_NS 200000000ull   /* the quiet time's floor */
#define BGSHARE_QUIET_MAX_NS 2000000000ull  /* and its cap */
#define BGSHARE_BURST_GAP_NS 50000000ull    /* shorter: the same burst */
#define BGSHARE_WINDOW_NS    500000000ull   /* delivery rate sampling */
#define BGSHARE_DIVISOR	     10		    /* background's share */
#define BGSHARE_RECENT_NS    10000000000ull /* small ranges */
#define BGSHARE_MIN_RATE     (256u * 1024)  /* bytes/s, rate unknown */

struct bgshare {
	uint64_t demand_seen_ns; /* last demand start or end; 0: never */
	uint64_t idle_since_ns;	 /* demand went idle then; 0: busy/never */
	uint64_t gap_ns;	 /* average gap between demand bursts */
	uint64_t burst_ns;	 /* a burst last began after a gap; 0: never */
	uint64_t win_start_ns;	 /* the current rate window */
	uint64_t win_bytes;
	uint64_t peak_bps; /* fastest window seen; 0: none yet */
};

/* What background requests may do now. */
struct bgshare_limit {
	bool restricted; /* demand is recent: giving way */
	/* Demand came back after a gap (a reader that reads in bursts,
	 * not the mount's own first requests) in the last
	 * BGSHARE_RECENT_NS: it may come back any moment, so background
	 * ranges should be short (one in flight must not hold a demand
	 * reply back long). */
	bool recent;
	unsigned slots; /* background requests in flight at most */
	uint64_t rate;	/* background bytes/s for the bucket; 0: unpaced */
	/* restricted with no demand in flight: when that ends; else 0. */
	uint64_t until_ns;
};

/* Start at time now, with no demand seen and no rate known. */
void bgshare_init(struct bgshare *s, uint64_t now);

/* A demand request starts at now. */
void bgshare_demand_start(struct bgshare *s, uint64_t now);

/* A demand request ends at now; idle: no other demand is in flight. */
void bgshare_demand_end(struct bgshare *s, uint64_t now, bool idle);

/* bytes of body (any priority) were delivered at now. */
void bgshare_delivered(struct bgshare *s, uint64_t now, uint64_t bytes);

/* The quiet time after demand, as things stand. */
uint64_t bgshare_quiet_ns(const struct bgshare *s);

/* The limit at now, with demand_inflight demand requests in flight, the
 * engine's max_background and the user's rate (0: unlimited). */
void bgshare_decide(const struct bgshare *s, uint64_t now,
		    unsigned demand_inflight, unsigned max_background,
		    uint64_t user_rate, struct bgshare_limit *ret);

#endif
