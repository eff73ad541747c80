/* suites.h - every CUnit suite, one line each: SUITE(name) calls suite_name(). */
#ifndef POSTERN_SUITES_H
#define POSTERN_SUITES_H

void suite_config(void);
void suite_opsq(void);
void suite_addr(void);
void suite_linereader(void);
void suite_ipc(void);
void suite_queueid(void);
void suite_qrecord(void);
void suite_qstore(void);
void suite_batcher(void);
void suite_handoff(void);
void suite_ready(void);
void suite_utf8(void);
void suite_rfc5322(void);
void suite_dsn(void);
void suite_sched(void);
void suite_link(void);
void suite_txn(void);
void suite_smtpd_session(void);
void suite_resolver_nexthop(void);
void suite_resolver_answer(void);
void suite_resolver_dnsclient(void);
void suite_smtpc(void);
void suite_agent(void);
void suite_maps(void);
void suite_limits(void);
void suite_lmtp(void);
void suite_notice(void);
void suite_notice_store(void);
void suite_auth(void);
void suite_maildir(void);
void suite_quota(void);
void suite_rcptquota(void);
void suite_rpcsrv(void);

#define ALL_SUITES \
    SUITE(config) \
    SUITE(addr) \
    SUITE(linereader) \
    SUITE(ipc) \
    SUITE(queueid) \
    SUITE(qrecord) \
    SUITE(qstore) \
    SUITE(batcher) \
    SUITE(handoff) \
    SUITE(ready) \
    SUITE(utf8) \
    SUITE(rfc5322) \
    SUITE(dsn) \
    SUITE(link) \
    SUITE(txn) \
    SUITE(smtpd_session) \
    SUITE(resolver_nexthop) \
    SUITE(resolver_answer) \
    SUITE(resolver_dnsclient) \
    SUITE(smtpc) \
    SUITE(agent) \
    SUITE(sched) \
    SUITE(maps) \
    SUITE(limits) \
    SUITE(lmtp) \
    SUITE(opsq) \
    SUITE(notice) \
    SUITE(notice_store) \
    SUITE(auth) \
    SUITE(maildir) \
    SUITE(quota) \
    SUITE(rcptquota) \
    SUITE(rpcsrv)

#endif
