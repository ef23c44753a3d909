%% The Erlang/OTP twin of `troupe-bench global-register N` and
%% `troupe-bench global-lookup N`: cluster-wide names (global) on a cluster
%% of three BEAM nodes on this machine, this one and two peers started
%% with the peer module (OTP 25), fully connected.
%%
%%   erlc -o DIR samples/bench/peers/global_bench.erl
%%   erl -noshell +S 2 -sname gb -setcookie gb -pa DIR \
%%       -eval "global_bench:main(['global-register', '2000']), init:stop()."
%%
%% Prints one line, as troupe-bench does:
%%
%%   <workload> <N> ops in <seconds> s = <ops/s> ops/s
%%
%% global-register: N processes of this node are registered one after the
%% other, each under its own name (global:register_name/2, which takes
%% global's lock on every node and tells them all), timed from the first
%% call to the N-th yes. global-lookup: 1000 names are registered first
%% (not timed), then N lookups (global:whereis_name/1, a read of this
%% node's table) go round them.
-module(global_bench).
-export([main/1]).

main([WA, NA]) ->
    W = atom_to_list(WA),
    N = list_to_integer(atom_to_list(NA)),
    true = N > 0,
    Peers = [start_peer(I) || I <- [1, 2]],
    [_, {_, P2}] = Peers,
    {_, P1} = hd(Peers),
    true = rpc:call(P2, net_kernel, connect_node, [P1]),
    ok = global:sync(),
    S = case W of
            "global-register" -> register_run(N);
            "global-lookup" -> lookup_run(N)
        end,
    io:format("~s ~B ops in ~.4f s = ~B ops/s~n", [W, N, S, round(N / S)]),
    [peer:stop(Pid) || {Pid, _} <- Peers],
    ok.

start_peer(I) ->
    Name = list_to_atom("gb" ++ integer_to_list(I) ++ "_" ++
                        os:getpid()),
    {ok, Pid, Node} = peer:start_link(#{name => Name,
                                        args => ["+S", "2", "-setcookie",
                                                 atom_to_list(erlang:get_cookie())]}),
    {Pid, Node}.

holder() ->
    receive stop -> ok end.

register_run(N) ->
    Pids = [spawn(fun holder/0) || _ <- lists:seq(1, N)],
    T0 = erlang:monotonic_time(microsecond),
    reg(Pids, 0),
    T1 = erlang:monotonic_time(microsecond),
    (T1 - T0) / 1.0e6.

reg([], _) -> ok;
reg([P | Ps], I) ->
    yes = global:register_name({bench, I}, P),
    reg(Ps, I + 1).

lookup_run(N) ->
    Pids = [spawn(fun holder/0) || _ <- lists:seq(1, 1000)],
    reg(Pids, 0),
    T0 = erlang:monotonic_time(microsecond),
    look(N, 0),
    T1 = erlang:monotonic_time(microsecond),
    (T1 - T0) / 1.0e6.

look(0, _) -> ok;
look(N, I) ->
    case global:whereis_name({bench, I}) of
        P when is_pid(P) -> ok
    end,
    look(N - 1, (I + 7) rem 1000).
