%% bench/cluster_erlang.erl - the Erlang/OTP distribution baseline for
%% bench/cluster_rtt: round trip of a 64-byte binary to an echo process on
%% another node (one in flight) and one-way throughput to a counting
%% process. Run by bench/cluster_erlang.sh (two erl -sname nodes).
-module(cluster_erlang).
-export([run/1, echo/0, sink/2]).
echo() -> receive {F, M} -> F ! M, echo(); stop -> ok end.
sink(0, F) -> F ! done;
sink(N, F) -> receive _ -> sink(N - 1, F) end.
rtt(_, 0, Acc) -> Acc;
rtt(E, N, Acc) ->
    T = erlang:monotonic_time(nanosecond),
    E ! {self(), <<0:512>>},
    receive _ -> ok end,
    rtt(E, N - 1, [erlang:monotonic_time(nanosecond) - T | Acc]).
run([NodeS]) ->
    Node = list_to_atom(NodeS),
    N = 20000, M = 500000,
    true = net_kernel:connect_node(Node),
    {cluster_erlang, Bin, F} = code:get_object_code(cluster_erlang),
    {module, cluster_erlang} = rpc:call(Node, code, load_binary, [cluster_erlang, F, Bin]),
    E = spawn(Node, cluster_erlang, echo, []),
    T0 = erlang:monotonic_time(nanosecond),
    S = lists:sort(rtt(E, N, [])),
    T1 = erlang:monotonic_time(nanosecond),
    io:format("RESULT erlang_rtt_rps ~p req/s~n", [N * 1.0e9 / (T1 - T0)]),
    io:format("RESULT erlang_rtt_p50 ~p us~n", [lists:nth(N div 2, S) / 1000]),
    io:format("RESULT erlang_rtt_p99 ~p us~n", [lists:nth(N * 99 div 100, S) / 1000]),
    K = spawn(Node, cluster_erlang, sink, [M, self()]),
    B = <<0:512>>,
    T2 = erlang:monotonic_time(nanosecond),
    [K ! B || _ <- lists:seq(1, M)],
    receive done -> ok end,
    T3 = erlang:monotonic_time(nanosecond),
    io:format("RESULT erlang_oneway_msgs ~p msg/s~n", [M * 1.0e9 / (T3 - T2)]),
    E ! stop,
    halt().
