/*
 * throttle.h - what a session does when one of smtpd's limits against
 * abuse bites: refuse a connection (per-IP count and rate), hold the
 * greeting for the greet pause and drop an early talker, slow down a
 * session that collects errors (the tarpit), and refuse mail or
 * recipients over an authenticated user's rates. The counting itself is
 * limits.c's; this file adds the clock, the timers, the replies and one
 * log line each time a limit bites. Never blocks the event loop: a delay
 * is a suspended session and a timer.
 *
 * Clients in relay_networks are exempt from the per-IP limits and the
 * greet pause (Postfix's smtpd_client_event_limit_exceptions = $mynetworks);
 * the per-user rates apply to every authenticated session.
 */
#ifndef POSTERN_SMTPD_THROTTLE_H
#define POSTERN_SMTPD_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "evloop.h"

struct session;
struct lim_entry;

/* Per-session state, inside struct session. */
struct throttle_state {
    struct lim_entry *ip;       /* counted connection, NULL if exempt or untracked */
    uint64_t timer;             /* greet pause or tarpit timer, 0 = none */
    int greet_pending;          /* greeting held: input now is early talk */
    int tarpit_logged;
    uint64_t connected;         /* ms, for the early-talker log line */
    size_t held_len;
    char held[1024];            /* the delayed error reply, CRLF included */
};

void throttle_init(struct evloop *ev, const struct config *cfg);
/* Expires old entries; about once a second. */
void throttle_tick(void);

/* A new session: 0 to serve it, -1 to refuse it with reply (a 421 line
 * without CRLF). */
int throttle_connect(struct session *s, char *reply, size_t len);
/* The session ends: releases its connection count. */
void throttle_disconnect(struct session *s);

/* Port 25, before the banner: 1 when the greeting is held (the session is
 * suspended until the pause ends, and session_greet() is called then),
 * 0 to greet now. */
int throttle_greet_pause(struct session *s);
/* The client sent data while the greeting was held: logs it (escaped). */
void throttle_early_talker(struct session *s, const char *data, size_t n);

/* An error reply (line, n bytes with CRLF) the session is about to send,
 * errors being its count of errors: 1 when the reply is held for the
 * tarpit delay (the session is suspended and the reply goes out when the
 * timer ends), 0 to send it now. */
int throttle_error_reply(struct session *s, const char *line, size_t n, unsigned errors);

/* MAIL and RCPT of an authenticated session: 0, or -1 with the refusal
 * (450 4.7.1) in reply. */
int throttle_mail(struct session *s, char *reply, size_t len);
int throttle_rcpt(struct session *s, char *reply, size_t len);

#endif
