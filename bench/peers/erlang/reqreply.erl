%% bench/peers/erlang/reqreply.erl - Troupe's services benchmarks written
%% as an Erlang programmer would: gen_server:call round trips, and
%% erlang:send_after/3 timers.
%%
%%   erlc -o OUT reqreply.erl
%%   erl +S 2:2 -noshell -pa OUT -run reqreply main BENCH [key=value ...]
%%
%% BENCH is request or timers; sizes as in Troupe's bench/request.c and
%% bench/timers.c (trips=, pairs=, armed=). Prints
%% "RESULT erlang.<figure> <value> <unit>" with the same figure names as
%% Troupe and halts with status 1 if the run's own check fails.
%%
%% request: a caller makes `trips` sequential gen_server:call/2 (default
%% timeout 5000 ms: a monitor, a timer and a demonitor per call) to a
%% gen_server whose handle_call replies with the request; clock read after
%% a warm-up of trips/10 calls.
%% timers: `pairs` times erlang:send_after(1000, self(), tick) then
%% erlang:cancel_timer/1 (checked: the cancel must win); then `armed`
%% timers due in an hour, references dropped (as Troupe drops its
%% handles), and the RSS delta per timer.
-module(reqreply).
-behaviour(gen_server).
-export([main/1]).
-export([init/1, handle_call/3, handle_cast/2]).

main([Bench | Opts]) ->
    Kv = [parse_opt(O) || O <- Opts],
    Ok = try run(list_to_atom(Bench), Kv)
         catch C:E:St ->
             io:format(standard_error, "~p:~p ~p~n", [C, E, St]), false
         end,
    halt(case Ok of true -> 0; _ -> 1 end).

parse_opt(O) ->
    [K, V] = string:split(O, "="),
    {list_to_atom(K), list_to_integer(V)}.

opt(K, Kv, Def) -> proplists:get_value(K, Kv, Def).

now_ns() -> erlang:monotonic_time(nanosecond).

result(Name, Value, Unit) ->
    io:format("RESULT erlang.~s ~.6g ~s~n", [Name, float(Value), Unit]).

rss() ->
    {ok, B} = file:read_file("/proc/self/statm"),
    [_, Res | _] = string:split(binary_to_list(B), " ", all),
    list_to_integer(Res) * 4096.

run(request, Kv) -> request(opt(trips, Kv, 500000));
run(timers, Kv) -> timers(opt(pairs, Kv, 2000000), opt(armed, Kv, 1000000)).

%% ---------------------------------------------------------------------
%% request: gen_server:call round trips

init([]) -> {ok, nostate}.
handle_call(N, _From, S) -> {reply, N, S}.
handle_cast(_, S) -> {noreply, S}.

calls(_S, N, N) -> true;
calls(S, I, N) ->
    case gen_server:call(S, I) of
        I -> calls(S, I + 1, N);
        Other -> io:format("CHECK FAILED: got ~p, want ~p~n", [Other, I]),
                 false
    end.

request(Trips) ->
    {ok, S} = gen_server:start(?MODULE, [], []),
    Warm = Trips div 10,
    Self = self(),
    %% The caller is a fresh process, as Troupe's requester is an actor.
    spawn(fun() ->
                  true = calls(S, 0, Warm),
                  T0 = now_ns(),
                  Ok = calls(S, Warm, Trips),
                  Self ! {done, Ok, now_ns() - T0}
          end),
    receive
        {done, Ok, Ns} ->
            gen_server:stop(S),
            Ok andalso result("request.ns_gs_call", Ns / (Trips - Warm), "ns"),
            Ok
    after 300000 -> false
    end.

%% ---------------------------------------------------------------------
%% timers: send_after + cancel_timer, memory per armed timer

pairs(0) -> true;
pairs(N) ->
    R = erlang:send_after(1000, self(), tick),
    case erlang:cancel_timer(R) of
        false -> false;
        _Left -> pairs(N - 1)
    end.

arm(0) -> ok;
arm(N) -> erlang:send_after(3600000, self(), tick), arm(N - 1).

timers(Pairs, Armed) ->
    Self = self(),
    P = spawn(fun() ->
                      T0 = now_ns(),
                      Ok = pairs(Pairs),
                      T1 = now_ns(),
                      Self ! {pairs, Ok, T1 - T0},
                      receive arm -> ok end,
                      T2 = now_ns(),
                      arm(Armed),
                      Self ! {armed, now_ns() - T2},
                      receive stop -> ok end
              end),
    receive
        {pairs, true, Ns} ->
            result("timers.ns_arm_cancel", Ns / Pairs, "ns"),
            timers_armed(P, Armed);
        {pairs, false, _} ->
            io:format("CHECK FAILED: a cancel lost to its timer~n"),
            false
    after 300000 -> false
    end.

timers_armed(P, Armed) ->
    erlang:garbage_collect(),
    Rss0 = rss(),
    P ! arm,
    receive
        {armed, Ns} ->
            Rss1 = rss(),
            result("timers.ns_arm", Ns / Armed, "ns"),
            result("timers.bytes_per_timer", (Rss1 - Rss0) / Armed, "B"),
            P ! stop,
            true
    after 300000 -> false
    end.
