%% bench/peers/erlang/restart.erl - crash+restart rate of an OTP
%% one_for_one supervisor, the peer of bench/restart.c.
%%
%%   erlc -o OUT restart.erl
%%   erl +S 2:2 -noshell -pa OUT -run restart main [restarts=N] [children=C]
%%
%% A one_for_one supervisor runs C permanent workers; the first N worker
%% starts crash at once (exit(crash), an abnormal exit), so the supervisor
%% restarts N times; later incarnations stay up. Clock: read by main before
%% supervisor:start_link and by the start function of the last restarted
%% worker (which runs inside the supervisor's restart, as in Troupe).
%% Intensity: huge, period 1 s (OTP's shortest). Logging is off (OTP logs a
%% supervisor report per restart; Troupe logs nothing at its default
%% level), so the figure is the supervisor itself. Check: the workers
%% started exactly C + N times and the supervisor runs C children.
%% Prints RESULT erlang.restart.per_s and erlang.restart.ns_per_restart.
-module(restart).
-behaviour(supervisor).
-export([main/1, init/1, start_worker/0]).

main(Opts) ->
    Kv = [parse_opt(O) || O <- Opts],
    N = proplists:get_value(restarts, Kv, 200000),
    C = proplists:get_value(children, Kv, 100),
    logger:set_primary_config(level, none),
    Count = atomics:new(1, []),
    persistent_term:put(?MODULE, {Count, N, C, self()}),
    process_flag(trap_exit, true),
    T0 = erlang:monotonic_time(nanosecond),
    {ok, Sup} = supervisor:start_link(?MODULE, C),
    T1 = receive {done, T} -> T end,
    Counts = supervisor:count_children(Sup),
    Ok = atomics:get(Count, 1) =:= C + N andalso
        proplists:get_value(active, Counts) =:= C,
    case Ok of
        true ->
            S = (T1 - T0) / 1.0e9,
            result("restart.per_s", N / S, "restarts/s"),
            result("restart.ns_per_restart", S * 1.0e9 / N, "ns"),
            halt(0);
        false ->
            io:format("CHECK FAILED erlang.restart: ~p starts, ~p~n",
                      [atomics:get(Count, 1), Counts]),
            halt(1)
    end.

parse_opt(O) ->
    [K, V] = string:split(O, "="),
    {list_to_atom(K), list_to_integer(V)}.

result(Name, Value, Unit) ->
    io:format("RESULT erlang.~s ~.6g ~s~n", [Name, float(Value), Unit]).

init(C) ->
    Flags = #{strategy => one_for_one, intensity => 1 bsl 40, period => 1},
    Kids = [#{id => I, start => {?MODULE, start_worker, []},
              restart => permanent, shutdown => brutal_kill, type => worker}
            || I <- lists:seq(1, C)],
    {ok, {Flags, Kids}}.

start_worker() ->
    {Count, N, C, Main} = persistent_term:get(?MODULE),
    K = atomics:add_get(Count, 1, 1),
    K =:= C + N andalso (Main ! {done, erlang:monotonic_time(nanosecond)}),
    Pid = case K =< N of
              true -> spawn_link(fun () -> exit(crash) end);
              false -> spawn_link(fun () -> receive stop -> ok end end)
          end,
    {ok, Pid}.
