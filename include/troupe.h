/*
 * troupe.h - the whole public API of Troupe, an Erlang-inspired actor
 * runtime for network servers.
 */
#ifndef TROUPE_H
#define TROUPE_H

#include <troupe/actor.h>
#include <troupe/base.h>
#include <troupe/cluster.h>
#include <troupe/direct.h>
#include <troupe/gen_server.h>
#include <troupe/net.h>
#include <troupe/pack.h>
#include <troupe/request.h>
#include <troupe/runtime.h>
#include <troupe/supervisor.h>
#include <troupe/timer.h>
#include <troupe/tls.h>
#include <troupe/ws.h>

#endif /* TROUPE_H */
