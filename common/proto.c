/*
 * proto.c - per-type frame size limits (proto.h). A frame of a type not in
 * this table, or longer than its row allows, is refused by the reader.
 */
#include "proto.h"

#include "ipc.h"

size_t proto_limit(uint16_t type)
{
    switch (type) {
    case Q_OPEN:
    case Q_OPENED:
    case Q_COMMITTED:
    case Q_ABORT:
    case Q_ERROR:
    case Q_LIST:
    case Q_LIST_END:
        return 4096;
    case Q_DATA:
        return PROTO_DATA_MAX + 64;     /* the content, its QID and two field heads */
    case Q_COMMIT:
    case Q_LIST_ITEM:
        /* a record with many recipients, each with ORCPT and a last reply */
        return IPC_MAX_BODY;
    case Q_FLUSH:
    case Q_FLUSHED:
    case D_WANT:
        return 4096;
    case D_JOB:
    case D_RESULT:
        /* up to a message's recipients for one destination, with replies */
        return IPC_MAX_BODY;
    case R_LOOKUP:
    case R_NEXTHOPS:
    case R_ERROR:
        return 4096;
    case Q_SHOW:
    case Q_STATS:
    case Q_DONE:
        return 4096;
    case Q_DELETE:
    case Q_HOLD:
    case Q_RELEASE:
    case Q_REQUEUE:
        return 64u << 10;           /* up to QCTL_IDS_MAX ids a frame */
    case Q_STATS_REPLY:
        return 1u << 20;
    case R_ANSWER:
    case R_HOPS:
        return 256u << 10;
    case A_CHECK:               /* a user name and a password of at most 12,288 octets of base64 */
    case A_RESULT:
        return 16384;
    case L_QUOTA:               /* a mailbox key and a size */
    case L_QUOTA_REPLY:
        return 1024;
    default:
        return 0;
    }
}
