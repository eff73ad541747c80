/*
 * control.c - control socket dispatch (control.h). Read-only commands may
 * come from any local user (mailq shows the queue to everyone, as
 * Postfix's does); a command that changes the queue must check c->uid
 * here first. Never hands out a descriptor.
 */
#include "control.h"

#include <stdio.h>

#include "listing.h"
#include "proto.h"

void control_frame(struct client *c, const struct ipc_msg *m)
{
    char why[64];

    switch (m->type) {
    case Q_LIST:
        if (c->listing)
            break;
        listing_start(c, m->reqid);
        return;
    }
    snprintf(why, sizeof(why), "unexpected message type %u", m->type);
    client_close(c, why);
}

void control_pump(struct client *c)
{
    if (c->listing)
        listing_pump(c);
}
