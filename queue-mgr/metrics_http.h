/*
 * metrics_http.h - the metrics_listen endpoint: a minimal HTTP/1.x server
 * in queue-mgr's event loop that answers GET /metrics with metrics.h's
 * text and closes. Nothing else is served; every request is parsed by
 * httpget.h within a bound, and every connection has a deadline.
 */
#ifndef POSTERN_QMGR_METRICS_HTTP_H
#define POSTERN_QMGR_METRICS_HTTP_H

#include <stddef.h>
#include "config.h"
#include "evloop.h"

int metrics_http_start(struct evloop *ev, const struct listen_addr *la, char *err, size_t errlen);
void metrics_http_stop(void);

#endif
