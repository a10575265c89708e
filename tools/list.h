/* SPDX-License-Identifier: MIT */
/* `vmferry list`'s remote half (list-remote.c).  The calling thread. */
#ifndef VMFERRY_LIST_H
#define VMFERRY_LIST_H

#include <stdbool.h>

#include "toolopts.h"

/* List the images on server ("https://HOST:PORT") with their state, as a
 * table or JSON on stdout.  Returns the exit status (0, 1, 2). */
int list_remote(struct tool_opts *o, const char *server, bool json);

#endif
