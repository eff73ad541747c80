/*
 * reload.h - `postern reload` and `posternctl reload-maps`: ask the running
 * master to reload, and hear its verdict.
 *
 * The master writes one line to RUN_DIR/postern.reload after every reload
 * it tried: "PID SEQ ok TEXT" or "PID SEQ refused TEXT". A client reads
 * the line, sends SIGHUP to the master named by the pid file, and waits
 * until the line changes: so the terminal shows exactly the reason the
 * master logged.
 */
#ifndef POSTERN_MASTER_RELOAD_H
#define POSTERN_MASTER_RELOAD_H

#include <stddef.h>

#define RELOAD_FILE "postern.reload"
#define RELOAD_WAIT_MS 120000       /* a reload compiles the maps: allow for a big one */

/* Master side: records the outcome of reload number seq. -1 on error. */
int reload_note(const char *run_dir, unsigned long seq, int ok, const char *text);

enum reload_verdict {
    RELOAD_DONE = 0,        /* the master took the new configuration */
    RELOAD_REFUSED = 1,     /* it kept the old one; text says why */
    RELOAD_NOT_RUNNING = 2, /* no master */
    RELOAD_ERROR = 3,       /* no answer, no permission; text says what */
};

/* Client side: signals the master of run_dir and waits for its verdict,
 * at most timeout_ms. text gets the master's words or the error. */
enum reload_verdict reload_request(const char *run_dir, int timeout_ms, char *text, size_t textlen);

#endif
