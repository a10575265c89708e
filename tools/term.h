/* SPDX-License-Identifier: MIT */
/* The terminal of `vmferry run --remote`: raw mode while attached to a
 * server-run VM's console, so each key goes to the guest as typed.
 * Process-wide (one terminal, stdin); call from one thread.
 */
#ifndef VMFERRY_TERM_H
#define VMFERRY_TERM_H

#include <stdbool.h>

/* The detach key: Ctrl-] (as telnet's and virsh console's). */
#define TERM_DETACH_KEY 0x1d

/* Put the terminal on fd in raw mode: no line editing, no echo, no
 * signals from keys (Ctrl-C goes to the guest), one byte at a time;
 * output keeps its newline translation, so log lines stay readable.
 * The old settings come back with term_restore(), which also runs at
 * exit.  Returns true if fd is a terminal now raw, false if it is not a
 * terminal (nothing changed) or its settings could not be changed. */
bool term_raw(int fd);

/* The settings term_raw() found, back (nothing if it changed none).
 * Async-signal-safe (tcsetattr only): a fatal signal's handler may call
 * it. */
void term_restore(void);

#endif
