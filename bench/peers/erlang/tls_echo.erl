%% bench/peers/erlang/tls_echo.erl - a TLS echo server as Erlang
%% programmers write one: ssl (OTP's own TLS), one process per connection
%% looping on a passive recv, a few acceptor processes on one listener.
%%
%%   erl +S 2:2 -noshell -pa DIR -run tls_echo main PORT CERT KEY
%%
%% Prints "port <n>" when listening; runs until killed.
-module(tls_echo).
-export([main/1]).

-define(ACCEPTORS, 4).

main([PortText, Cert, Key]) ->
    ok = ssl:start(),
    Port = list_to_integer(PortText),
    {ok, L} = ssl:listen(Port, [binary, {packet, raw}, {active, false},
                                {reuseaddr, true}, {nodelay, true},
                                {backlog, 1024}, {ip, {127, 0, 0, 1}},
                                {certfile, Cert}, {keyfile, Key},
                                {versions, ['tlsv1.3', 'tlsv1.2']}]),
    [spawn_link(fun() -> accept(L) end) || _ <- lists:seq(1, ?ACCEPTORS)],
    io:format("port ~b~n", [Port]),
    receive stop -> ok end.

accept(L) ->
    case ssl:transport_accept(L) of
        {ok, T} ->
            Pid = spawn(fun() -> receive go -> handshake(T) end end),
            ok = ssl:controlling_process(T, Pid),
            Pid ! go;
        {error, _} ->
            ok
    end,
    accept(L).

handshake(T) ->
    case ssl:handshake(T, 10000) of
        {ok, S} -> loop(S);
        _ -> ok
    end.

loop(S) ->
    case ssl:recv(S, 0) of
        {ok, Data} ->
            ok = ssl:send(S, Data),
            loop(S);
        {error, _} ->
            ssl:close(S)
    end.
