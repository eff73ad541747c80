/* suites.h - every CUnit suite, one line each: SUITE(name) calls suite_name(). */
#ifndef POSTERN_SUITES_H
#define POSTERN_SUITES_H

void suite_config(void);
void suite_addr(void);
void suite_linereader(void);
void suite_ipc(void);
void suite_queueid(void);
void suite_qrecord(void);
void suite_qstore(void);
void suite_smtpc(void);

#define ALL_SUITES \
    SUITE(config) \
    SUITE(addr) \
    SUITE(linereader) \
    SUITE(ipc) \
    SUITE(queueid) \
    SUITE(qrecord) \
    SUITE(qstore) \
    SUITE(smtpc)

#endif
