%% bench/peers/erlang/core_bench.erl - the five core benchmarks written as
%% an Erlang programmer would: processes, `!` and `receive`.
%%
%%   erlc -o OUT core_bench.erl
%%   erl +S 2:2 +P 4000000 -noshell -pa OUT -run core_bench main BENCH \
%%       [key=value ...]
%%
%% BENCH is spawn_idle, pingpong, fanin, ring or skynet; sizes as in Troupe's
%% benchmarks (actors=, trips=, senders=, msgs=, chunk=, window=, hops=,
%% leaves=). Prints "RESULT erlang.<bench>.<figure> <value> <unit>" and halts
%% with status 1 if the run's own check fails. Timing: erlang:monotonic_time
%% read by the process that starts and ends each run (as in Troupe).
%% +P raises the process limit (default 262,144) for a million processes.
-module(core_bench).
-export([main/1]).

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

check(_What, Got, Got) -> true;
check(What, Got, Want) ->
    io:format("CHECK FAILED erlang.~s: got ~p, want ~p~n", [What, Got, Want]),
    false.

run(spawn_idle, Kv) -> spawn_idle(opt(actors, Kv, 1000000));
run(pingpong, Kv) -> pingpong(opt(trips, Kv, 1000000));
run(fanin, Kv) ->
    fanin(opt(senders, Kv, 8), opt(msgs, Kv, 1000000), opt(chunk, Kv, 1000),
          opt(window, Kv, 4));
run(ring, Kv) -> ring(opt(actors, Kv, 503), opt(hops, Kv, 10000000));
run(skynet, Kv) -> skynet(opt(leaves, Kv, 1000000)).

%% ---------------------------------------------------------------------
%% spawn_idle: a million processes blocked in receive; RSS delta / N.

rss() ->
    {ok, B} = file:read_file("/proc/self/statm"),
    [_, Res | _] = string:split(binary_to_list(B), " ", all),
    list_to_integer(Res) * 4096.

idle() -> receive stop -> ok end.

spawn_n(0, Acc) -> Acc;
spawn_n(N, Acc) -> spawn_n(N - 1, [spawn(fun idle/0) | Acc]).

%% Runs until every process is blocked (no run queue left): quiescence,
%% not timing.
wait_quiet() ->
    case erlang:statistics(total_run_queue_lengths_all) of
        0 -> ok;
        _ -> timer:sleep(5), wait_quiet()
    end.

spawn_idle(N) ->
    erlang:garbage_collect(),
    wait_quiet(),
    Rss0 = rss(),
    T0 = now_ns(),
    Pids = spawn_n(N, []),
    T1 = now_ns(),
    wait_quiet(),
    Rss1 = rss(),
    result("spawn_idle.bytes_per_actor", (Rss1 - Rss0) / N, "B"),
    result("spawn_idle.ns_per_spawn", (T1 - T0) / N, "ns"),
    result("spawn_idle.rss_mb", Rss1 / 1048576, "MB"),
    Live = length([P || P <- Pids, is_process_alive(P)]),
    check("spawn_idle.live_actors", Live, N).

%% ---------------------------------------------------------------------
%% pingpong: one message in flight between two processes.

pong() ->
    receive
        {From, I} -> From ! {pong, I}, pong();
        stop -> ok
    end.

ping(_Pong, N, N) -> N;
ping(Pong, I, N) ->
    Pong ! {self(), I},
    receive {pong, I} -> ping(Pong, I + 1, N) end.

pingpong(N) ->
    Pong = spawn(fun pong/0),
    T0 = now_ns(),
    Done = ping(Pong, 0, N),
    T1 = now_ns(),
    Pong ! stop,
    result("pingpong.ns_one_way", (T1 - T0) / N / 2, "ns"),
    result("pingpong.ns_round_trip", (T1 - T0) / N, "ns"),
    check("pingpong.trips", Done, N).

%% ---------------------------------------------------------------------
%% fanin: S senders x M messages to one process. Window W > 0: a sender
%% may be W chunks ahead and gets a credit per chunk handled; W = 0: no
%% flow control.

sender(To, Sent, M, _Chunk, _W) when Sent >= M -> To;
sender(To, Sent, M, Chunk, W) ->
    Sent1 = send_chunk(To, Sent, min(Sent + Chunk, M)),
    case W =:= 0 orelse Sent1 >= M of
        true -> ok;
        false -> receive more -> ok end
    end,
    sender(To, Sent1, M, Chunk, W).

send_chunk(_To, End, End) -> End;
send_chunk(To, I, End) ->
    To ! {self(), I},
    send_chunk(To, I + 1, End).

%% The first W chunks go without waiting for a credit.
sender_start(To, M, Chunk, 0) -> sender(To, 0, M, Chunk, 0);
sender_start(To, M, Chunk, W) ->
    Ahead = min((W - 1) * Chunk, M),
    sender(To, send_chunk(To, 0, Ahead), M, Chunk, W).

receive_all(Total, Total, _Chunk, _W) -> Total;
receive_all(N, Total, Chunk, W) ->
    receive
        {From, I} ->
            case W > 0 andalso (I + 1) rem Chunk =:= 0 of
                true -> From ! more;
                false -> ok
            end,
            receive_all(N + 1, Total, Chunk, W)
    end.

fanin(S, M, Chunk, W) ->
    Self = self(),
    T0 = now_ns(),
    [spawn(fun() -> sender_start(Self, M, Chunk, W) end)
     || _ <- lists:seq(1, S)],
    Got = receive_all(0, S * M, Chunk, W),
    T1 = now_ns(),
    result("fanin.msgs_per_s", S * M * 1.0e9 / (T1 - T0), "msg/s"),
    result("fanin.rss_mb", rss() / 1048576, "MB"),
    check("fanin.count", Got, S * M).

%% ---------------------------------------------------------------------
%% ring: a token passed around N processes, Hops times.

member(Next, Id, Coord) ->
    receive
        {next, P} -> member(P, Id, Coord);
        0 -> Coord ! {done, Id}, member(Next, Id, Coord);
        T -> Next ! T - 1, member(Next, Id, Coord)
    end.

%% Spawns members N-1 .. 0, each knowing the one spawned before it.
build(0, Next, _Coord, Last) -> {Next, Last};
build(I, Next, Coord, Last) ->
    Id = I - 1,
    P = spawn(fun() -> member(Next, Id, Coord) end),
    build(I - 1, P, Coord, case Last of none -> P; _ -> Last end).

ring(N, Hops) ->
    {First, Last} = build(N, none, self(), none),
    Last ! {next, First},
    T0 = now_ns(),
    First ! Hops,
    receive {done, Id} -> ok end,
    T1 = now_ns(),
    result("ring.ns_per_hop", (T1 - T0) / Hops, "ns"),
    check("ring.last_member", Id, Hops rem N).

%% ---------------------------------------------------------------------
%% skynet: a 10-ary tree of processes summing 0 .. Leaves-1.

skynet(Parent, Num, 1) -> Parent ! Num;
skynet(Parent, Num, Size) ->
    Self = self(),
    D = Size div 10,
    [spawn(fun() -> skynet(Self, Num + I * D, D) end) || I <- lists:seq(0, 9)],
    Parent ! collect(10, 0).

collect(0, Sum) -> Sum;
collect(N, Sum) -> receive S -> collect(N - 1, Sum + S) end.

skynet(Leaves) ->
    Self = self(),
    T0 = now_ns(),
    spawn(fun() -> skynet(Self, 0, Leaves) end),
    Sum = receive S -> S end,
    T1 = now_ns(),
    result("skynet.ms", (T1 - T0) / 1.0e6, "ms"),
    check("skynet.sum", Sum, Leaves * (Leaves - 1) div 2).
