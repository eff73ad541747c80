/*
 * dotstuff.c - dot-stuffing and CRLF normalisation for DATA (dotstuff.h).
 * Pure byte transformation: no I/O, no allocation.
 */
#include "dotstuff.h"

#include <string.h>

void dotstuff_init(struct dotstuff *d)
{
    d->bol = 1;
    d->cr = 0;
}

size_t dotstuff_block(struct dotstuff *d, const char *in, size_t len, char *out)
{
    size_t o = 0, i = 0;

    while (i < len) {
        if (d->bol && in[i] == '.')
            out[o++] = '.';
        /* copy the run up to and including the next LF in one go */
        const char *nl = memchr(in + i, '\n', len - i);
        size_t run = nl ? (size_t)(nl - (in + i)) : len - i;
        if (run > 0) {
            memcpy(out + o, in + i, run);
            o += run;
            d->cr = in[i + run - 1] == '\r';
            i += run;
            d->bol = 0;
        }
        if (!nl)
            break;
        if (!d->cr)
            out[o++] = '\r';
        out[o++] = '\n';
        i++;
        d->cr = 0;
        d->bol = 1;
    }
    return o;
}

size_t dotstuff_finish(struct dotstuff *d, char *out)
{
    size_t o = 0;

    if (!d->bol) {
        if (!d->cr)
            out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    d->bol = 1;
    d->cr = 0;
    return o + 3;
}
