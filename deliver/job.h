/*
 * job.h - one delivery job as queue-mgr hands it over (D_JOB, proto.h) and
 * its result (D_RESULT): parsed and validated as untrusted input, turned
 * into the engine's smtpc_msg, and the per-recipient results encoded back.
 * Pure: no I/O besides fstat/fcntl on the descriptor (job_check_fd).
 */
#ifndef POSTERN_DELIVER_JOB_H
#define POSTERN_DELIVER_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "ipc.h"
#include "queueid.h"
#include "smtpc.h"

#define JOB_MAX_RCPT 10000
#define JOB_DEST_MAX 300

struct job_rcpt {
    uint64_t index;
    char addr[ADDR_MAX + 1];
    char orcpt[600];
    char notify[40];            /* "SUCCESS,FAILURE,DELAY", "NEVER" or "" */
    uint64_t attempts;
};

struct job {
    uint64_t id;
    char qid[QID_LEN + 1];
    char dest[JOB_DEST_MAX];
    char sender[ADDR_MAX + 1];
    char envid[120];
    uint64_t ret, body, flags, arrival, size, dispatch_ms;
    size_t nrcpt;
    struct job_rcpt *jr;
    struct smtpc_rcpt *rc;      /* the engine's view, same order */
    struct smtpc_msg msg;
};

/* Parses a D_JOB frame into j (job_free after, also on failure). 0 when
 * valid; -1 with why. has_id says whether j->id and j->qid were read (a
 * result can be sent even for a job refused for its other fields). */
int job_parse(const struct ipc_msg *m, struct job *j, int *has_id, char *why, size_t whylen);
void job_free(struct job *j);
/* The descriptor must be a regular file open read-only, at least size
 * bytes long: 0, or -1 with why. */
int job_check_fd(int fd, uint64_t size, char *why, size_t whylen);
/* Points msg at fd and the recipients (after job_parse). */
void job_bind(struct job *j, int fd);
/* Every recipient gets this result (a job that could not be tried). */
void job_fail_all(struct job *j, enum smtpc_status st, const char *dsn, const char *reply);
/* The D_RESULT frame (finished, reqid 0): -1 if it does not fit. */
int job_result_encode(const struct job *j, unsigned dflags, struct ipc_out *out);
/* RCPT_* of qrecord.h for an engine status (pending counts as deferred). */
uint64_t job_status_code(enum smtpc_status st);

#endif
