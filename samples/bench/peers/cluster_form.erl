%% cluster-form N: the Erlang twin of troupe-bench's cluster-form
%% (samples/bench/bench_cluster.c):
%%
%%   erl -noshell -eval "cluster_form:main(['5']), init:stop()."
%%
%% Starts N BEAM nodes with peer (each +S 1, as each troupe process runs
%% one scheduler), then times, from the moment every one of them runs,
%% how long until each has the N - 1 others in nodes() when all but the
%% first net_adm:ping the first (global's transitive connect does the
%% rest); then kills the last one's OS process with SIGKILL and times
%% until every survivor's nodes() has lost it. The peers are driven over
%% their standard I/O (peer), so this node is none of theirs. Prints the
%% lines troupe-bench prints:
%%
%%   cluster-form N ops in <formation s> s = <N / s> ops/s
%%   cluster-form formed_ms <ms> converge_ms <ms>
-module(cluster_form).
-export([main/1]).

main([NA]) ->
    N = list_to_integer(atom_to_list(NA)),
    Peers = [start(I) || I <- lists:seq(1, N)],
    [{_, Seed} | Rest] = Peers,
    T0 = erlang:monotonic_time(microsecond),
    Self = self(),
    [spawn_link(fun() -> Self ! {pinged, peer:call(P, net_adm, ping, [Seed])} end)
     || {P, _} <- Rest],
    wait_all(Peers, N - 1),
    T1 = erlang:monotonic_time(microsecond),
    [receive {pinged, pong} -> ok end || _ <- Rest],
    {PLast, _} = lists:last(Peers),
    OsPid = peer:call(PLast, os, getpid, []),
    Survivors = lists:droplast(Peers),
    T2 = erlang:monotonic_time(microsecond),
    os:cmd("kill -9 " ++ OsPid),
    wait_all(Survivors, N - 2),
    T3 = erlang:monotonic_time(microsecond),
    [peer:stop(P) || {P, _} <- Survivors],
    Formed = (T1 - T0) / 1.0e6,
    io:format("cluster-form ~b ops in ~.4f s = ~b ops/s~n",
              [N, Formed, round(N / Formed)]),
    io:format("cluster-form formed_ms ~.2f converge_ms ~.2f~n",
              [Formed * 1000, (T3 - T2) / 1000]).

start(I) ->
    Name = list_to_atom("cf" ++ integer_to_list(I) ++ "_"
                        ++ os:getpid()),
    {ok, P, Node} = peer:start(#{name => Name, args => ["+S", "1"],
                                 connection => standard_io,
                                 wait_boot => 30000}),
    {P, Node}.

%% Polls until every peer's nodes() has K entries.
wait_all(Peers, K) ->
    case lists:all(fun({P, _}) -> length(peer:call(P, erlang, nodes, [])) =:= K end,
                   Peers) of
        true -> ok;
        false -> wait_all(Peers, K)
    end.
