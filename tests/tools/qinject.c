/*
 * qinject - fills a Postern queue for the benchmark (scripts/bench-queue)
 * through the real commit path: the pickup socket (Q_OPEN, Q_DATA,
 * Q_COMMIT, exactly what sendmail sends), so every message is durable and
 * indexed as any other. Never writes the queue itself.
 *
 *   qinject RUN_DIR COUNT [PROCS] [RCPTS]
 *
 * PROCS processes (default 32) each commit their share one message at a
 * time, so group commit batches up to PROCS messages. Each message: a
 * 1 KiB body, RCPTS recipients (default 1) at 1,000 different domains.
 * Prints "injected N in S s (R msgs/s)"; exit 0 only when all were taken.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "paths.h"
#include "qclient.h"
#include "qrecord.h"
#include "util.h"

static int one_proc(const char *run_dir, long from, long n, int rcpts)
{
    static char body[1024];
    struct qc_conn c;
    struct qrec r;

    memset(body, 'x', sizeof(body));
    memcpy(body, "Subject: bench\r\n\r\n", 18);
    memcpy(body + sizeof(body) - 2, "\r\n", 2);
    if (qc_connect(&c, run_dir, SOCK_QUEUE_PICKUP, 60000) != QC_OK) {
        perror("qinject: connect");
        return 1;
    }
    for (long i = from; i < from + n; i++) {
        char addr[128];
        enum qc_status s;
        int fd;
        qrec_init(&r);
        str_copy(r.origin, "pickup", sizeof(r.origin));
        str_copy(r.proto, "sendmail", sizeof(r.proto));
        snprintf(r.sender, sizeof(r.sender), "bench%ld@example.com", i % 977);
        for (int k = 0; k < rcpts; k++) {
            snprintf(addr, sizeof(addr), "user%ld.%d@d%ld.bench.invalid", i, k, (i + k) % 1000);
            if (qrec_add_rcpt(&r, addr) < 0)
                return 1;
            r.rcpt[k].notify = 0;
        }
        if ((s = qc_open(&c, r.qid, &fd)) != QC_OK || (s = qc_data(&c, r.qid, body, sizeof(body))) != QC_OK ||
            (s = qc_commit(&c, &r)) != QC_OK) {
            fprintf(stderr, "qinject: message %ld: %s %s\n", i, qc_status_text(s), c.last.text);
            return 1;
        }
        qrec_free(&r);
    }
    qc_close(&c);
    return 0;
}

int main(int argc, char **argv)
{
    long count, procs = 32;
    int rcpts = 1, bad = 0;
    uint64_t t0 = now_ms();

    if (argc < 3 || (count = atol(argv[2])) <= 0) {
        fprintf(stderr, "usage: qinject RUN_DIR COUNT [PROCS] [RCPTS]\n");
        return 64;
    }
    if (argc > 3)
        procs = atol(argv[3]);
    if (argc > 4)
        rcpts = atoi(argv[4]);
    if (procs < 1 || procs > 1024 || rcpts < 1 || rcpts > 1000)
        return 64;
    for (long p = 0; p < procs; p++) {
        long from = count * p / procs, to = count * (p + 1) / procs;
        pid_t pid = fork();
        if (pid < 0) {
            perror("qinject: fork");
            return 1;
        }
        if (pid == 0)
            _exit(one_proc(argv[1], from, to - from, rcpts));
    }
    for (long p = 0; p < procs; p++) {
        int st;
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad = 1;
    }
    double s = (double)(now_ms() - t0) / 1000.0;
    printf("injected %ld in %.1f s (%.0f msgs/s)%s\n", count, s, (double)count / (s > 0 ? s : 1),
           bad ? " -- SOME FAILED" : "");
    return bad;
}
