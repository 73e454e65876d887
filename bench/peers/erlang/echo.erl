%% bench/peers/erlang/echo.erl - an echo server as Erlang programmers write
%% one: gen_tcp, one process per connection (it owns its socket and loops
%% on a passive recv), a few acceptor processes on one listening socket.
%%
%%   erl +S 2:2 -noshell -pa DIR -run echo main PORT
%%
%% Prints "port <n>" when listening; runs until killed.
-module(echo).
-export([main/1]).

-define(ACCEPTORS, 4).

main([PortText]) ->
    Port = list_to_integer(PortText),
    {ok, L} = gen_tcp:listen(Port, [binary, {packet, raw}, {active, false},
                                    {reuseaddr, true}, {nodelay, true},
                                    {backlog, 1024}, {ip, {127, 0, 0, 1}}]),
    [spawn_link(fun() -> accept(L) end) || _ <- lists:seq(1, ?ACCEPTORS)],
    io:format("port ~b~n", [Port]),
    receive stop -> ok end.

accept(L) ->
    case gen_tcp:accept(L) of
        {ok, S} ->
            Pid = spawn(fun() -> receive go -> loop(S) end end),
            ok = gen_tcp:controlling_process(S, Pid),
            Pid ! go;
        {error, _} ->
            ok
    end,
    accept(L).

loop(S) ->
    case gen_tcp:recv(S, 0) of
        {ok, Data} ->
            gen_tcp:send(S, Data),
            loop(S);
        {error, _} ->
            gen_tcp:close(S)
    end.
