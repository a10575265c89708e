/* SPDX-License-Identifier: MIT */
/* Terminal progress bar.  See progress.h. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "util.h"

void progress_init(struct progress *p, const char *label, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total;
	p->start_ns = now_ns();
	p->tty = isatty(STDERR_FILENO);
}

void progress_format(char *buf, size_t len, const char *label, uint64_t done,
		     uint64_t total, double rate_bps)
{
	char bar[31], d[32], t[32], rate[32];
	unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
	unsigned fill = pct * 30 / 100;

	memset(bar, '#', fill);
	memset(bar + fill, '.', 30 - fill);
	bar[30] = '\0';
	format_bytes(done, d, sizeof(d));
	format_bytes(total, t, sizeof(t));
	format_bytes((uint64_t)rate_bps, rate, sizeof(rate));
	snprintf(buf, len, "%s [%s] %3u%% %s/%s %s/s", label, bar, pct, d, t,
		 rate);
}

static void progress_draw(struct progress *p, uint64_t done, uint64_t now)
{
	char line[200];
	double secs = (double)(now - p->start_ns) / 1e9;

	progress_format(line, sizeof(line), p->label, done, p->total,
			secs > 0 ? (double)done / secs : 0);
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	p->last_draw_ns = now;
}

void progress_update(struct progress *p, uint64_t done)
{
	uint64_t now;

	if (!p->tty)
		return;
	now = now_ns();
	if (now - p->last_draw_ns < 100000000ull)
		return;
	progress_draw(p, done, now);
}

void progress_finish(struct progress *p, uint64_t done)
{
	if (!p->tty)
		return;
	progress_draw(p, done, now_ns());
	fputc('\n', stderr);
}
