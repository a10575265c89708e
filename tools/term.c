/* SPDX-License-Identifier: MIT */
/* Raw mode for the console's terminal (see term.h).  The saved settings
 * are written once before the mode changes, then only read (by
 * term_restore(), from the main thread, exit or a signal handler). */
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include "term.h"

static struct termios saved;
static int saved_fd = -1;

void term_restore(void)
{
	if (saved_fd < 0)
		return;
	/* TCSAFLUSH: keys typed but not yet read are dropped, not handed
	 * to the shell after us. */
	(void)tcsetattr(saved_fd, TCSAFLUSH, &saved); /* best effort */
	saved_fd = -1;
}

bool term_raw(int fd)
{
	static bool registered;
	struct termios t;

	if (!isatty(fd) || tcgetattr(fd, &t) < 0)
		return false;
	saved = t;
	cfmakeraw(&t);
	/* cfmakeraw() also ends output processing: keep "\n" -> "\r\n" so
	 * our own log lines do not stair-step. */
	t.c_oflag |= OPOST | ONLCR;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (!registered && atexit(term_restore) == 0)
		registered = true;
	saved_fd = fd;
	if (tcsetattr(fd, TCSAFLUSH, &t) < 0) {
		saved_fd = -1;
		return false;
	}
	return true;
}
