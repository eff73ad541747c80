/*
 * alink.c - the auth link (alink.h). Must never log the password and
 * never keep the frame that carried it longer than the link does
 * (it is wiped as soon as link_request has taken its copy).
 */
#include "alink.h"

#include <openssl/crypto.h>

#include "link.h"
#include "proto.h"

static struct link *alink;
static alink_cb answer_cb;

void alink_init(struct evloop *ev, const char *path, alink_cb cb)
{
    answer_cb = cb;
    alink = link_new(ev, "auth", path, proto_limit);
}

void alink_free(void)
{
    link_free(alink);
    alink = NULL;
}

static void on_reply(void *arg, const struct ipc_msg *m)
{
    struct auth_result r;

    if (!m || authp_parse_result(m, &r) < 0)
        answer_cb(arg, NULL);
    else
        answer_cb(arg, &r);
}

uint32_t alink_check(const char *user, const char *pass, size_t passlen, const char *client, void *arg)
{
    struct ipc_out m;
    uint32_t id;
    int r;

    if (!alink)
        return 0;
    id = link_new_id(alink);
    r = authp_build_check(&m, id, user, pass, passlen, client);
    if (r == 0)
        r = link_request(alink, &m, -1, id, ALINK_WAIT_MS, on_reply, arg);
    if (m.b.data)
        OPENSSL_cleanse(m.b.data, m.b.cap);
    ipc_out_free(&m);
    return r < 0 ? 0 : id;
}

void alink_cancel(uint32_t id)
{
    if (alink)
        link_cancel(alink, id);
}
