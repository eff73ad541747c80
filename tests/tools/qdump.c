/*
 * qdump - test helper: prints one queued message's stored state from the
 * LMDB index, opened read-only (as mailq's stand-alone mode does), one
 * "name value" line a field, so integration tests can check what
 * mailq does not show (attempts, next_try, status, dsn).
 *
 *   qdump SPOOL_DIR QUEUEID
 *
 * Exit 0, 1 when the message is not stored, 2 on error. Never writes.
 */
#include <stdio.h>

#include "qrecord.h"
#include "qstore.h"

int main(int argc, char **argv)
{
    struct qstore *q;
    struct qrec r;
    char err[512];
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: qdump SPOOL_DIR QUEUEID\n");
        return 2;
    }
    if (qstore_open(&q, argv[1], 1, err, sizeof(err)) < 0) {
        fprintf(stderr, "qdump: %s\n", err);
        return 2;
    }
    rc = qstore_get(q, argv[2], &r, err, sizeof(err));
    if (rc != 0) {
        qstore_close(q);
        if (rc < 0)
            fprintf(stderr, "qdump: %s\n", err);
        return rc < 0 ? 2 : 1;
    }
    printf("flags %u\narrival %llu\nnrcpt %zu\n", r.flags, (unsigned long long)r.arrival, r.nrcpt);
    for (size_t i = 0; i < r.nrcpt; i++) {
        const struct qrcpt *rc0 = &r.rcpt[i];
        printf("rcpt%zu.status %u\nrcpt%zu.attempts %u\nrcpt%zu.next_try %llu\nrcpt%zu.dsn %s\n", i,
               rc0->status, i, rc0->attempts, i, (unsigned long long)rc0->next_try, i,
               rc0->dsn[0] ? rc0->dsn : "-");
        printf("rcpt%zu.reply %s\n", i, rc0->reply ? rc0->reply : "-");
    }
    qrec_free(&r);
    qstore_close(q);
    return 0;
}
