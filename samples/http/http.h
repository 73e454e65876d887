/*
 * samples/http/http.h - a small HTTP/1.1 keep-alive server: GET / (text),
 * GET /json and GET /stats (JSON), one actor per connection.
 */
#ifndef SAMPLE_HTTP_H
#define SAMPLE_HTTP_H

#include "../common/sample.h"

/**
 * Starts the HTTP service: a dynamic supervisor "http" under the root
 * supervisor and a listener on `port`. Prints "READY http <address>".
 * Returns 0 or a negative errno.
 */
int http_start(tp_runtime *rt, const struct sample_opts *o, int port,
               tp_listener **out);

#endif /* SAMPLE_HTTP_H */
