%% The Erlang twin of troupe-bench's call-latency and remote-call-latency
%% (bench_latency.c): N sequential gen_server:call round trips, each timed,
%% while a ring of 100 processes per scheduler passes 4 tokens without end.
%%   erl -noshell +S 2 -pa DIR -eval "call_latency:main(['200000']), init:stop()."
%% Prints "call-latency latency_us p50 A p99 B p999 C" and
%% "call-latency N ops in S s = R ops/s".
%%
%% remote-call-latency: the server is on a second BEAM node, started with
%% peer (+S 2, as troupe-bench's server process runs as many schedulers as
%% the benchmark) and connected to this one, which must be distributed:
%%   erl -noshell +S 2 -sname NAME -pa DIR \
%%       -eval "call_latency:main([remote, '200000']), init:stop()."
%% The peer's rings start first, then this node's, then the calls, as in
%% troupe-bench. Prints the same two lines, named remote-call-latency.
-module(call_latency).
-behaviour(gen_server).
-export([main/1, rings/0, init/1, handle_call/3, handle_cast/2]).

main([NA]) ->
    N = list_to_integer(atom_to_list(NA)),
    Rings = rings(),
    {ok, Srv} = gen_server:start(?MODULE, [], []),
    measure("call-latency", Srv, N),
    [exit(P, kill) || P <- Rings];
main([remote, NA]) ->
    N = list_to_integer(atom_to_list(NA)),
    Dir = filename:dirname(code:which(?MODULE)),
    {ok, Peer, Node} =
        peer:start_link(#{name => peer:random_name(call_latency_peer),
                          args => ["+S", "2", "-pa", Dir, "-setcookie",
                                   atom_to_list(erlang:get_cookie())],
                          wait_boot => 30000}),
    {ok, Srv} = erpc:call(Node, gen_server, start, [?MODULE, [], []]),
    _ = erpc:call(Node, ?MODULE, rings, []),
    Rings = rings(),
    measure("remote-call-latency", Srv, N),
    [exit(P, kill) || P <- Rings],
    peer:stop(Peer).

measure(Name, Srv, N) ->
    Self = self(),
    T0 = erlang:monotonic_time(),
    spawn(fun() -> Self ! {times, calls(Srv, N, [])} end),
    Times = receive {times, Ts} -> Ts end,
    T1 = erlang:monotonic_time(),
    Sorted = list_to_tuple(lists:sort(Times)),
    io:format("~s latency_us p50 ~.1f p99 ~.1f p999 ~.1f~n",
              [Name, pct(Sorted, 0.50), pct(Sorted, 0.99), pct(Sorted, 0.999)]),
    Secs = erlang:convert_time_unit(T1 - T0, native, nanosecond) / 1.0e9,
    io:format("~s ~b ops in ~.4f s = ~b ops/s~n",
              [Name, N, Secs, round(N / Secs)]).

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

%% A ring per scheduler of this node; returns their processes, which run
%% until they are killed (or their node stops).
rings() ->
    lists:append([ring() || _ <- lists:seq(1, erlang:system_info(schedulers_online))]).

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
