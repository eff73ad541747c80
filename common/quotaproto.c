/*
 * quotaproto.c - L_QUOTA and L_QUOTA_REPLY frames (quotaproto.h). Must
 * never accept a frame with a field missing, repeated, out of range or
 * malformed: both sides are another process.
 */
#include "quotaproto.h"

#include <string.h>

#include "proto.h"

/* A mailbox key as it travels: 1 to MAPDB_KEY_MAX-1 bytes, one '@', no
 * control byte (mapdb.h: the local role looks it up as it is). */
static int key_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= MAPDB_KEY_MAX || !strchr(s, '@'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

int quotap_build_ask(struct ipc_out *m, uint32_t id, const char *key, uint64_t size)
{
    ipc_out_begin(m, L_QUOTA, id);
    if (!key || !key_ok(key)) {
        m->failed = 1;
        return -1;
    }
    ipc_out_str(m, T_L_KEY, key);
    ipc_out_u64(m, T_L_SIZE, size);
    return ipc_out_finish(m);
}

int quotap_parse_ask(const struct ipc_msg *m, struct quota_ask *a)
{
    struct ipc_iter it;
    struct ipc_field f;
    int have_key = 0, have_size = 0, r;

    memset(a, 0, sizeof(*a));
    if (m->type != L_QUOTA)
        return -1;
    ipc_iter_init(&it, m->body, m->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        switch (f.tag) {
        case T_L_KEY:
            if (have_key++ || ipc_field_str(&f, a->key, sizeof(a->key)) < 0 || !key_ok(a->key))
                return -1;
            break;
        case T_L_SIZE:
            if (have_size++ || ipc_field_u64(&f, &a->size) < 0)
                return -1;
            break;
        default:
            break; /* unknown tags are skipped, as everywhere */
        }
    }
    return r == 0 && have_key && have_size ? 0 : -1;
}

int quotap_build_answer(struct ipc_out *m, uint32_t id, const struct quota_answer *a)
{
    ipc_out_begin(m, L_QUOTA_REPLY, id);
    if ((unsigned)a->verdict > QUOTA_TEMPFAIL) {
        m->failed = 1;
        return -1;
    }
    ipc_out_u64(m, T_L_VERDICT, (uint64_t)a->verdict);
    ipc_out_u64(m, T_L_USED_BYTES, a->used_bytes);
    ipc_out_u64(m, T_L_USED_MSGS, a->used_msgs);
    ipc_out_u64(m, T_L_LIMIT_BYTES, a->limit_bytes);
    ipc_out_u64(m, T_L_LIMIT_MSGS, a->limit_msgs);
    return ipc_out_finish(m);
}

int quotap_parse_answer(const struct ipc_msg *m, struct quota_answer *a)
{
    struct ipc_iter it;
    struct ipc_field f;
    unsigned seen = 0;
    uint64_t v;
    int r;

    memset(a, 0, sizeof(*a));
    if (m->type != L_QUOTA_REPLY)
        return -1;
    ipc_iter_init(&it, m->body, m->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        uint64_t *dst;
        unsigned bit;
        switch (f.tag) {
        case T_L_VERDICT:       dst = &v; bit = 1; break;
        case T_L_USED_BYTES:    dst = &a->used_bytes; bit = 2; break;
        case T_L_USED_MSGS:     dst = &a->used_msgs; bit = 4; break;
        case T_L_LIMIT_BYTES:   dst = &a->limit_bytes; bit = 8; break;
        case T_L_LIMIT_MSGS:    dst = &a->limit_msgs; bit = 16; break;
        default:                continue;
        }
        if ((seen & bit) || ipc_field_u64(&f, dst) < 0)
            return -1;
        seen |= bit;
        if (bit == 1) {
            if (v > QUOTA_TEMPFAIL)
                return -1;
            a->verdict = (enum quota_verdict)v;
        }
    }
    /* the verdict is required; the numbers are advice (0 when absent) */
    return r == 0 && (seen & 1) ? 0 : -1;
}
