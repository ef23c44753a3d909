%% pg-join N, pg-dispatch N and pg-dispatch-local N: the Erlang twin of
%% troupe-bench's process-group workloads (samples/bench/bench_pg.c):
%%
%%   erl -noshell +S 2 -sname NAME -eval "pg_bench:main(['pg-join', '200000']), init:stop()."
%%
%% This node must be distributed (-sname): it starts a second BEAM node
%% with peer (+S 2, as troupe-bench's peer process runs as many
%% schedulers as the benchmark), connected to it, and both run the
%% default scope (pg). The peer holds 4 members of the dispatch group
%% and watches the marker group of pg-join (pg:monitor).
%%
%% pg-join: a process does N pg:join + pg:leave pairs of itself (one op
%% per pair; each is a call to this node's scope server, which sends the
%% change on to the peer's); then it joins a marker group, and
%% converge_ms is from the end of the loop until the peer's monitor sees
%% the marker (os:system_time on both nodes: the same machine's clock).
%%
%% pg-dispatch: 8 members, 4 on each node; a process sends N messages,
%% each to the next member in turn of pg:get_members (read for every
%% send, as troupe's tr_pg_send_one reads its table), then a flush to
%% every member; each answers with its count, and the clock stops when
%% the answers add up to N. pg-dispatch-local: the same over
%% pg:get_local_members (the 4 members on this node).
%%
%% Prints the lines troupe-bench prints:
%%
%%   <workload> N ops in <s> s = <ops/s> ops/s
%%   pg-join converge_ms <ms> cluster_ops_s <N / (loop + convergence)>
-module(pg_bench).
-export([main/1, member/0, watch/1]).

-define(G_JOIN, 'bench.join').
-define(G_MARK, 'bench.join-end').
-define(G_WORK, 'bench.workers').

main([WA, NA]) ->
    W = atom_to_list(WA),
    N = list_to_integer(atom_to_list(NA)),
    {ok, _} = pg:start_link(),
    Dir = filename:dirname(code:which(?MODULE)),
    {ok, Peer, Node} =
        peer:start_link(#{name => peer:random_name(pg_bench_peer),
                          args => ["+S", "2", "-pa", Dir, "-setcookie",
                                   atom_to_list(erlang:get_cookie())],
                          wait_boot => 30000}),
    {ok, _} = erpc:call(Node, pg, start, [pg]),
    [spawn(Node, ?MODULE, member, []) || _ <- lists:seq(1, 4)],
    Self = self(),
    spawn(Node, ?MODULE, watch, [Self]),
    receive watching -> ok after 30000 -> exit(no_watcher) end,
    wait_members(4),
    run(W, N),
    peer:stop(Peer).

%% Until the peer's members are seen here (its scope and ours met).
wait_members(K) ->
    case length(pg:get_members(?G_WORK)) >= K of
        true -> ok;
        false -> timer:sleep(1), wait_members(K)
    end.

run("pg-join", N) ->
    Self = self(),
    J = spawn_link(fun() -> joiner(Self, N) end),
    receive {done, T0, T1, TEnd} -> ok end,
    receive {seen, TSeen} -> ok after 60000 -> TSeen = exit(not_seen) end,
    J ! stop,
    [] = pg:get_members(?G_JOIN),
    S = (T1 - T0) / 1.0e9,
    C = (TSeen - TEnd) / 1.0e9,
    io:format("pg-join ~b ops in ~.4f s = ~b ops/s~n", [N, S, round(N / S)]),
    io:format("pg-join converge_ms ~.2f cluster_ops_s ~b~n",
              [C * 1000, round(N / (S + C))]);
run("pg-dispatch", N) ->
    dispatch("pg-dispatch", N, fun() -> pg:get_members(?G_WORK) end);
run("pg-dispatch-local", N) ->
    dispatch("pg-dispatch-local", N,
             fun() -> pg:get_local_members(?G_WORK) end).

joiner(Parent, N) ->
    T0 = erlang:monotonic_time(nanosecond),
    join_loop(N),
    T1 = erlang:monotonic_time(nanosecond),
    TEnd = os:system_time(nanosecond),
    ok = pg:join(?G_MARK, self()),
    Parent ! {done, T0, T1, TEnd},
    receive stop -> ok end.

join_loop(0) -> ok;
join_loop(N) ->
    ok = pg:join(?G_JOIN, self()),
    ok = pg:leave(?G_JOIN, self()),
    join_loop(N - 1).

%% On the peer: tells the parent when the marker group has a member.
watch(Parent) ->
    {Ref, []} = pg:monitor(?G_MARK),
    Parent ! watching,
    receive {Ref, join, ?G_MARK, _} -> Parent ! {seen, os:system_time(nanosecond)} end.

member() ->
    ok = pg:join(?G_WORK, self()),
    member_loop(0).

member_loop(C) ->
    receive
        {item, _} -> member_loop(C + 1);
        {flush, From} -> From ! {count, C}, member_loop(0)
    end.

dispatch(Name, N, Members) ->
    [spawn(fun member/0) || _ <- lists:seq(1, 4)],
    wait_members(8),
    Self = self(),
    T0 = erlang:monotonic_time(nanosecond),
    spawn_link(fun() -> dispatcher(Self, N, Members) end),
    receive {done, Got} -> ok end,
    T1 = erlang:monotonic_time(nanosecond),
    N = Got,
    S = (T1 - T0) / 1.0e9,
    io:format("~s ~b ops in ~.4f s = ~b ops/s~n", [Name, N, S, round(N / S)]).

dispatcher(Parent, N, Members) ->
    send_loop(N, 0, Members),
    All = pg:get_members(?G_WORK),
    [M ! {flush, self()} || M <- All],
    Parent ! {done, collect(length(All), 0)}.

send_loop(0, _, _) -> ok;
send_loop(N, I, Members) ->
    Ms = Members(),
    lists:nth(I rem length(Ms) + 1, Ms) ! {item, N},
    send_loop(N - 1, I + 1, Members).

collect(0, Sum) -> Sum;
collect(K, Sum) -> receive {count, C} -> collect(K - 1, Sum + C) end.
