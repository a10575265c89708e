/* SPDX-License-Identifier: MIT */
/* HTTP routes of VMs the server runs (vm.h): /v1/images/NAME/vm and
 * /v1/images/NAME/console (docs/protocol.md, "VMs on the server").
 * Called by http.c and http_write.c on the request's thread. */
#ifndef VMFERRY_HTTP_VM_H
#define VMFERRY_HTTP_VM_H

#include "http.h"

/* Largest body of these routes: console input, or the start's {}. */
#define HTTP_VM_BODY_MAX 4096

/* POST .../vm (its body, if any, is ignored), GET/HEAD .../vm, DELETE
 * .../vm. */
enum MHD_Result http_vm_start(struct http_request *req);
enum MHD_Result http_vm_state(struct http_request *req);
enum MHD_Result http_vm_stop(struct http_request *req);

/* GET .../console?offset=N: the console output from byte N, streamed
 * while the VM runs.  POST .../console: the body (in req->body) to the
 * VM's serial console. */
enum MHD_Result http_vm_console(struct http_request *req);
enum MHD_Result http_vm_input(struct http_request *req);

#endif
