%% The Erlang twin of troupe-bench's call-latency (bench_latency.c):
%% N sequential gen_server:call round trips, each timed, while a ring of
%% 100 processes per scheduler passes 4 tokens without end.
%%   erl -noshell +S 2 -pa DIR -eval "call_latency:main(['200000']), init:stop()."
%% Prints "call-latency latency_us p50 A p99 B p999 C" and
%% "call-latency N ops in S s = R ops/s".
-module(call_latency).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2]).

main([NA]) ->
    N = list_to_integer(atom_to_list(NA)),
    Rings = [ring() || _ <- lists:seq(1, erlang:system_info(schedulers_online))],
    {ok, Srv} = gen_server:start(?MODULE, [], []),
    Self = self(),
    T0 = erlang:monotonic_time(),
    spawn(fun() -> Self ! {times, calls(Srv, N, [])} end),
    Times = receive {times, Ts} -> Ts end,
    T1 = erlang:monotonic_time(),
    [exit(P, kill) || Ring <- Rings, P <- Ring],
    Sorted = list_to_tuple(lists:sort(Times)),
    io:format("call-latency latency_us p50 ~.1f p99 ~.1f p999 ~.1f~n",
              [pct(Sorted, 0.50), pct(Sorted, 0.99), pct(Sorted, 0.999)]),
    Secs = erlang:convert_time_unit(T1 - T0, native, nanosecond) / 1.0e9,
    io:format("call-latency ~b ops in ~.4f s = ~b ops/s~n",
              [N, Secs, round(N / Secs)]).

calls(_, 0, Acc) -> Acc;
calls(Srv, K, Acc) ->
    T0 = erlang:monotonic_time(nanosecond),
    K = gen_server:call(Srv, K),
    calls(Srv, K - 1, [erlang:monotonic_time(nanosecond) - T0 | Acc]).

pct(Sorted, Q) ->
    N = tuple_size(Sorted),
    element(round(Q * (N - 1)) + 1, Sorted) / 1000.

init([]) -> {ok, nil}.
handle_call(X, _From, S) -> {reply, X, S}.
handle_cast(_, S) -> {noreply, S}.

%% A ring of 100 processes with 4 tokens going round.
ring() ->
    Ps = [spawn(fun() -> receive {next, Next} -> pass(Next) end end)
          || _ <- lists:seq(1, 100)],
    Nexts = tl(Ps) ++ [hd(Ps)],
    [P ! {next, Nx} || {P, Nx} <- lists:zip(Ps, Nexts)],
    [lists:nth(I * 25 + 1, Ps) ! token || I <- lists:seq(0, 3)],
    Ps.

pass(Next) ->
    receive token -> Next ! token, pass(Next) end.
