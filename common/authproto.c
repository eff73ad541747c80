/*
 * authproto.c - A_CHECK and A_RESULT frames (authproto.h). Must never
 * accept a frame with a field out of bounds, and never copy the password
 * anywhere but the caller's buffer.
 */
#include "authproto.h"

#include <string.h>

#include "proto.h"

static int text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

int authp_build_check(struct ipc_out *m, uint32_t id, const char *user, const char *pass, size_t passlen,
                      const char *client)
{
    ipc_out_begin(m, A_CHECK, id);
    if (!text_ok(user, AUTH_USER_MAX) || !text_ok(client, AUTH_CLIENT_MAX) || passlen > AUTH_PASS_MAX ||
        memchr(pass, 0, passlen)) {
        m->failed = 1;
        return -1;
    }
    ipc_out_str(m, T_A_USER, user);
    ipc_out_bytes(m, T_A_PASS, pass, passlen);
    ipc_out_str(m, T_A_CLIENT, client);
    return ipc_out_finish(m);
}

int authp_parse_check(const struct ipc_msg *m, struct auth_check *c)
{
    struct ipc_iter it;
    struct ipc_field f;
    int have_user = 0, have_pass = 0, have_client = 0, r;

    memset(c, 0, sizeof(*c));
    if (m->type != A_CHECK)
        return -1;
    ipc_iter_init(&it, m->body, m->len);
    while ((r = ipc_iter_next(&it, &f)) == 1) {
        switch (f.tag) {
        case T_A_USER:
            if (have_user++ || ipc_field_str(&f, c->user, sizeof(c->user)) < 0 || !c->user[0])
                return -1;
            break;
        case T_A_PASS:
            if (have_pass++ || f.len > AUTH_PASS_MAX || memchr(f.val, 0, f.len))
                return -1;
            memcpy(c->pass, f.val, f.len);
            c->pass[f.len] = 0;
            c->passlen = f.len;
            break;
        case T_A_CLIENT:
            if (have_client++ || ipc_field_str(&f, c->client, sizeof(c->client)) < 0 || !c->client[0])
                return -1;
            break;
        default:
            break; /* unknown tags are skipped, as everywhere */
        }
    }
    return r == 0 && have_user && have_pass && have_client ? 0 : -1;
}

int authp_build_result(struct ipc_out *m, uint32_t id, const struct auth_result *r)
{
    ipc_out_begin(m, A_RESULT, id);
    ipc_out_u64(m, T_A_STATUS, (uint64_t)r->status);
    ipc_out_u64(m, T_A_DELAY, r->delay_ms);
    if (r->user[0])
        ipc_out_str(m, T_A_USER, r->user);
    return ipc_out_finish(m);
}

int authp_parse_result(const struct ipc_msg *m, struct auth_result *r)
{
    struct ipc_iter it;
    struct ipc_field f;
    uint64_t v;
    int have_status = 0, rc;

    memset(r, 0, sizeof(*r));
    if (m->type != A_RESULT)
        return -1;
    ipc_iter_init(&it, m->body, m->len);
    while ((rc = ipc_iter_next(&it, &f)) == 1) {
        switch (f.tag) {
        case T_A_STATUS:
            if (have_status++ || ipc_field_u64(&f, &v) < 0 || v > AUTH_TEMPFAIL)
                return -1;
            r->status = (enum auth_status)v;
            break;
        case T_A_DELAY:
            if (ipc_field_u64(&f, &v) < 0 || v > 600000)
                return -1;
            r->delay_ms = v;
            break;
        case T_A_USER:
            if (ipc_field_str(&f, r->user, sizeof(r->user)) < 0)
                return -1;
            break;
        default:
            break;
        }
    }
    if (rc != 0 || !have_status || (r->status == AUTH_OK && !r->user[0]))
        return -1;
    return 0;
}
