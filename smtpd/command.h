/*
 * command.h - the SMTP command layer: the command table, what each state
 * does with input, and each command's check-then-act (every precondition
 * is checked and answered before anything changes).
 */
#ifndef POSTERN_SMTPD_COMMAND_H
#define POSTERN_SMTPD_COMMAND_H

#include <stddef.h>
#include <stdint.h>

struct session;

#define CMD_LINE_MAX 512          /* RFC 5321 4.5.3.1.4 */
#define CMD_LINE_MAX_EXT 1024     /* MAIL/RCPT with RFC 3461 parameters */

/* Processes input while the session can (not suspended, closing, in a TLS
 * handshake or with too much output unsent); returns the bytes used. */
size_t command_input(struct session *s, const char *data, size_t n);
/* " helo=1 mail=1/2 ... commands=5/6" for the disconnect log line. */
const char *command_summary(const struct session *s, char *out, size_t outlen);
/* "CONNECT", "EHLO", "MAIL", "RCPT", "DATA", "BDAT" or "STARTTLS". */
const char *command_state_name(const struct session *s);

/*
 * An asynchronous recipient check (a map look-up in another process).
 * start() begins checking mailbox for s and returns a request id (0: cannot,
 * the recipient gets 451); later, never from inside start(), the checker
 * calls command_rcpt_checked(s, reply) with reply NULL to accept or the
 * refusal reply. cancel(id) is called instead if the session goes first.
 * None is installed by default.
 */
struct rcpt_checker {
    uint32_t (*start)(struct session *s, const char *mailbox);
    void (*cancel)(uint32_t id);
};
void command_set_rcpt_checker(const struct rcpt_checker *c);
void command_rcpt_checked(struct session *s, const char *reply);

/* The local role's answer to a RCPT's quota question (the qtlink.h
 * callback; arg is the session, qa NULL when none came): 452/552 or 250,
 * then the session goes on. */
struct quota_answer;
void command_quota_answer(void *arg, const struct quota_answer *qa);

#endif
