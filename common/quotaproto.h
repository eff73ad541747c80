/*
 * quotaproto.h - the mailbox quota question between smtpd and the local
 * role (proto.h: L_QUOTA -> L_QUOTA_REPLY): building and validating both
 * frames, and the path of the socket.
 *
 * smtpd knows from the compiled map (mapdb_quota) whether a mailbox has a
 * quota; only then, at RCPT, it asks the local role, which alone can see
 * the Maildirs and their Maildir++ "maildirsize" files. The local role
 * binds the socket inside smtpd's jail before it chroots, and accepts only
 * user_smtpd. The answer is advice for the RCPT reply: the local role
 * enforces the quota again when it stores the message.
 */
#ifndef POSTERN_QUOTAPROTO_H
#define POSTERN_QUOTAPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "mapdb.h"

#define QUOTA_SOCK_DIR "smtpd/local"              /* relative to run_dir; owned by user_local */
#define QUOTA_SOCK "smtpd/local/quota.sock"
#define QUOTA_SOCK_IN_SMTPD_JAIL "/local/quota.sock"

enum quota_verdict {
    QUOTA_OK = 0,               /* room for size more bytes and one more message */
    QUOTA_FULL = 1,             /* over quota with this message: 452 4.2.2 */
    QUOTA_TOOBIG = 2,           /* the message alone is larger than the quota: 552 5.2.2 */
    QUOTA_NONE = 3,             /* the key has no quota (or is no mailbox) */
    QUOTA_TEMPFAIL = 4,         /* usage could not be read: accept, delivery decides */
};

struct quota_ask {
    char key[MAPDB_KEY_MAX];
    uint64_t size;
};

struct quota_answer {
    enum quota_verdict verdict;
    uint64_t used_bytes, used_msgs;
    uint64_t limit_bytes, limit_msgs;   /* 0: no limit of that kind */
};

/* 0, or -1 when the key is empty, too long or has a control byte. */
int quotap_build_ask(struct ipc_out *m, uint32_t id, const char *key, uint64_t size);
/* Validates every field; -1 on anything missing, repeated, too long or malformed. */
int quotap_parse_ask(const struct ipc_msg *m, struct quota_ask *a);
int quotap_build_answer(struct ipc_out *m, uint32_t id, const struct quota_answer *a);
int quotap_parse_answer(const struct ipc_msg *m, struct quota_answer *a);

#endif
