/*
 * paths.h - where the processes meet on disk: the socket names and files
 * under run_dir. The process layout, not the wire format (that is proto.h).
 *
 * queue-mgr listens on:
 *   RUN/smtpd/queue/queue.sock  smtpd links (inside smtpd's chroot jail)
 *   RUN/queue/pickup.sock       sendmail (any local user; SO_PEERCRED recorded)
 *   RUN/queue/control.sock      mailq, posternctl
 *   RUN/queue/local.sock        the local delivery role (only user_local)
 * resolver listens on:
 *   RUN/resolver/resolver.sock  deliver, queue-mgr, smtpd (SO_PEERCRED)
 * The master writes RUN/postern.pid.
 *
 * Never put a path built from envelope data here: these are fixed names.
 */
#ifndef POSTERN_PATHS_H
#define POSTERN_PATHS_H

/* socket paths, relative to run_dir */
#define SOCK_SMTPD_JAIL   "smtpd"              /* smtpd's chroot jail */
#define SOCK_QUEUE_SMTPD  "smtpd/queue/queue.sock"
#define SOCK_QUEUE_SMTPD_IN_JAIL "/queue/queue.sock"
#define SOCK_QUEUE_PICKUP "queue/pickup.sock"
#define SOCK_QUEUE_CONTROL "queue/control.sock"
/* the local delivery role (deliver/local) pulls jobs here; it connects
 * before it chroots into mailbox_dir, so the socket needs no jail */
#define SOCK_QUEUE_LOCAL  "queue/local.sock"
#define PID_FILE          "postern.pid"
#define SOCK_RESOLVER_JAIL "resolver"          /* resolver's chroot jail */
#define SOCK_RESOLVER     "resolver/resolver.sock"
/* deliver's chroot jail: queue-mgr and the resolver each bind a socket in
 * it, in a directory of their own, before deliver chroots there */
#define SOCK_DELIVER_JAIL "deliver"
#define SOCK_QUEUE_DELIVER "deliver/queue/deliver.sock"
#define SOCK_QUEUE_DELIVER_IN_JAIL "/queue/deliver.sock"
#define SOCK_RESOLVER_DELIVER "deliver/resolver/resolver.sock"
#define SOCK_RESOLVER_DELIVER_IN_JAIL "/resolver/resolver.sock"

#endif
