/*
 * txn.h - one SMTP mail transaction (RFC 5321 3.3): MAIL and RCPT with
 * their parameters (SIZE, BODY, SMTPUTF8, RET, ENVID, NOTIFY, ORCPT), the
 * recipients, and the message data framed by DATA or BDAT into the spool
 * file queue-mgr passed. Knows nothing of sockets or sessions: the command
 * layer decides when, this decides what, and returns the reply on refusal.
 */
#ifndef POSTERN_SMTPD_TXN_H
#define POSTERN_SMTPD_TXN_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "linereader.h"
#include "qrecord.h"
#include "subfix.h"

#define TXN_REPLY_MAX 600

/* Why a message is refused at its end, in the order they are found. */
enum txn_poison { P_NONE, P_BARE, P_TOOLONG, P_SIZE, P_IO, P_NOSPACE };

struct txn {
    int active;                 /* MAIL accepted */
    struct qrec env;            /* sender, parameters, recipients (a growable array) */
    uint64_t max_size;
    char qid[QID_LEN + 1];      /* set once queue-mgr gave a spool file */
    int spool_fd;
    unsigned spool_gen;         /* queue link generation of the spool file */
    struct buf spool_buf;
    uint64_t msg_size;
    enum txn_poison poison;
    int prev_crlf;              /* DATA: the last line ended in CRLF */
    int via_bdat;
    int open_retried;           /* Q_OPEN asked again (or asked while the link was down): no more tries */
    struct linereader *bdat_lr; /* BDAT: line checks across chunks */
    uint64_t bdat_left, bdat_chunk;
    int bdat_last, bdat_discard;
    struct subfix *sub;         /* submission (587/465): header fix-ups and the From: check */
    char sub_reply[TXN_REPLY_MAX];
    uint64_t size_param;        /* MAIL SIZE= (0: not given) */
    uint64_t *rcpt_quota;       /* by recipient index: its mailbox quota in bytes (0: none), */
    unsigned rcpt_quota_cap;    /* grown only when a recipient has one */
};

void txn_init(struct txn *t);
/* Ends the transaction: an open spool file is closed and given back. */
void txn_reset(struct txn *t);

/* MAIL: the parameters after the path (p is modified). 0, or -1 with the
 * reply in err. *size is SIZE= (0 if absent), *utf8 SMTPUTF8. */
int txn_mail_params(struct txn *t, char *p, uint64_t *size, int *utf8, char *err, size_t errlen);
/* Starts the transaction for sender (after txn_mail_params). */
void txn_mail(struct txn *t, const char *sender, int utf8, uint64_t max_size);
/* RCPT: the parameters after the path. orcpt gets "" or the ORCPT value. */
int txn_rcpt_params(char *p, unsigned *notify, char *orcpt, size_t orcptlen, char *err, size_t errlen);
/* Adds a recipient: 0, or -1 with the reply in err. */
int txn_add_rcpt(struct txn *t, const char *mailbox, unsigned notify, const char *orcpt, unsigned max,
                 char *err, size_t errlen);
/* Takes back the last recipient (an asynchronous check refused it). */
void txn_drop_last_rcpt(struct txn *t);
/* Remembers the last recipient's mailbox quota in bytes for the end of
 * DATA. -1 when out of memory (then that recipient counts as without). */
int txn_set_rcpt_quota(struct txn *t, uint64_t bytes);

/* The spool file for the message (queue-mgr's Q_OPENED), and the trace
 * line that goes first; it does not count against SIZE. */
void txn_spool_open(struct txn *t, const char *qid, int fd, unsigned gen, const char *received, size_t len);
/* Submission: add a missing Date: and Message-ID:, and with owned set
 * refuse a From: that is not the user's (subfix.h). After txn_spool_open. */
void txn_submission(struct txn *t, const char *host, subfix_owned_fn owned, void *arg);
/* DATA: one line from the reader; 1 when it was the final ".". */
int txn_data_line(struct txn *t, const char *line, size_t len, unsigned flags);
/* BDAT: chunk bytes, spooled as they are and checked for line ends. */
void txn_bdat_bytes(struct txn *t, const char *p, size_t n);
/* BDAT LAST: a message must end with a line end; adds a missing one. */
void txn_bdat_finish(struct txn *t);
/* The end of the data: flushes and closes the spool file. NULL when the
 * message may be committed, else the refusal reply; why gets the log text.
 * A message larger than the quota of every recipient is refused 552 5.2.2
 * (rcptquota.h); the spool file then stays open for txn_reset to abort. */
const char *txn_data_end(struct txn *t, const char **why);

#endif
