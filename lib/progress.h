/* SPDX-License-Identifier: MIT */
/* A progress bar on stderr, drawn only when stderr is a terminal.
 *
 * One owner thread per bar.  Redraws at most ten times a second.
 */
#ifndef VMFERRY_PROGRESS_H
#define VMFERRY_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress {
	const char *label; /* borrowed */
	uint64_t total;	   /* bytes */
	uint64_t start_ns;
	uint64_t last_draw_ns;
	bool tty;
};

void progress_init(struct progress *p, const char *label, uint64_t total);
/* done: bytes so far. */
void progress_update(struct progress *p, uint64_t done);
/* Draw the final state and end the line. */
void progress_finish(struct progress *p, uint64_t done);

/* Format one bar line ("label [####....] 42% 1.2 GiB/3 GiB 80 MiB/s")
 * into buf; used by progress_update() and by `vmferry status --watch`. */
void progress_format(char *buf, size_t len, const char *label, uint64_t done,
		     uint64_t total, double rate_bps);

#endif
