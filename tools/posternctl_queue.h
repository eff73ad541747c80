/*
 * posternctl_queue.h - posternctl's queue commands: show, delete, hold,
 * release, requeue, stats (common/qctl.h over the control socket).
 */
#ifndef POSTERN_POSTERNCTL_QUEUE_H
#define POSTERN_POSTERNCTL_QUEUE_H

#define CTLQ_USAGE \
    "       posternctl [-c FILE] show ID\n" \
    "       posternctl [-c FILE] delete ID...|ALL|-s SENDER|-r RECIPIENT|-\n" \
    "       posternctl [-c FILE] hold|release|requeue ID...|-\n" \
    "       posternctl [-c FILE] stats [-p]\n"

/* Whether word is one of these commands. */
int ctlq_is_command(const char *word);
/* Runs argv[0] (the command) with its arguments; returns the exit code. */
int ctlq_main(const char *conf, int argc, char **argv);

#endif
