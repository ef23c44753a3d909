%% The Erlang twin of troupe-bench's skynet and fjcreate (bench_tree.c):
%%   erl -noshell +S 2 +P 10000000 -pa DIR -eval "tree_bench:main([skynet, '1000000']), init:stop()."
%%   erl -noshell +S 2 +P 10000000 -pa DIR -eval "tree_bench:main([fjcreate, '1000000']), init:stop()."
%% Prints one line: "<workload> <count> ops in <seconds> s = <ops/s> ops/s".
-module(tree_bench).
-export([main/1]).

main([skynet, LA]) ->
    Leaves = list_to_integer(atom_to_list(LA)),
    Actors = actors(Leaves, 0),
    Self = self(),
    T0 = erlang:monotonic_time(),
    spawn(fun() -> skynet(Self, 0, Leaves) end),
    Sum = receive {sum, S} -> S end,
    T1 = erlang:monotonic_time(),
    Sum = Leaves * (Leaves - 1) div 2,
    report(skynet, Actors, T1 - T0);
main([fjcreate, NA]) ->
    N = list_to_integer(atom_to_list(NA)),
    Main = self(),
    T0 = erlang:monotonic_time(),
    %% The root's mailbox fills with a million answers while it forks:
    %% off the heap, as one tunes such a process, or every collection of
    %% its heap walks them.
    spawn_opt(fun() ->
                      Self = self(),
                      fork(Self, N),
                      join(N),
                      Main ! done
              end, [{message_queue_data, off_heap}]),
    receive done -> ok end,
    T1 = erlang:monotonic_time(),
    report(fjcreate, N, T1 - T0).

actors(0, Acc) -> Acc;
actors(N, Acc) -> actors(N div 10, Acc + N).

skynet(Parent, Num, 1) ->
    Parent ! {sum, Num};
skynet(Parent, Num, Size) ->
    Self = self(),
    Step = Size div 10,
    [spawn(fun() -> skynet(Self, Num + I * Step, Step) end) || I <- lists:seq(0, 9)],
    Parent ! {sum, gather(10, 0)}.

gather(0, Acc) -> Acc;
gather(K, Acc) -> receive {sum, V} -> gather(K - 1, Acc + V) end.

%% Savina's fork-join create: each child gets one message, does a little
%% arithmetic, answers and ends.
fork(_, 0) -> ok;
fork(Root, K) ->
    Pid = spawn(fun child/0),
    Pid ! {work, Root},
    fork(Root, K - 1).

child() ->
    receive {work, Root} ->
        R = 37.2 * 2.0 + 1.0,
        Root ! {done, R > 0.0}
    end.

join(0) -> ok;
join(K) -> receive {done, _} -> join(K - 1) end.

report(Name, Count, Native) ->
    Secs = erlang:convert_time_unit(Native, native, nanosecond) / 1.0e9,
    io:format("~s ~b ops in ~.4f s = ~b ops/s~n",
              [Name, Count, Secs, round(Count / Secs)]).
