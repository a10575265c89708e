/* SPDX-License-Identifier: MIT */
/* `vmferry run --remote`: the VM on the server.  (Not yet.) */
#include <errno.h>

#include "log.h"

#include "run.h"

int run_remote(struct run_opts *ro)
{
	log_error("%s: running on the server is not supported yet", ro->url);
	return 1;
}
