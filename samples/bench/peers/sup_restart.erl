%% The Erlang/OTP twin of `troupe-bench sup-restart N`: a one_for_one
%% supervisor whose single permanent child crashes and is restarted N times.
%%
%%   erlc -o DIR samples/bench/peers/sup_restart.erl
%%   erl -noshell +S 2 -pa DIR -eval "sup_restart:main(['100000']), init:stop()."
%%
%% Prints one line, as troupe-bench does:
%%
%%   sup-restart <N> ops in <seconds> s = <restarts/s> ops/s
%%
%% The same work as troupe's: the child's start is synchronous (proc_lib's
%% start_link and init_ack, as a gen_server's is, and as troupe's
%% supervisor starts its children), its first act is to tell the driver it
%% is up, and the driver answers by telling it to crash with a user reason.
%% The clock runs from the first crash order to the N-th restarted child's
%% hello. The intensity is N + 1 within an hour, so the supervisor never
%% gives up.
%%
%% The logger's level is set to none: the supervisor and proc_lib then skip
%% their error reports (they check the level before building one), and the
%% figure is the cost of the restart itself, not of formatting 2 N reports
%% to the terminal. troupe-bench likewise discards its reports (it still
%% builds them), so this setting favours Erlang slightly.
-module(sup_restart).
-behaviour(supervisor).
-export([main/1, init/1, start_child/1, child_init/2]).

main([NA]) ->
    N = to_int(NA),
    true = N > 0,
    ok = logger:set_primary_config(level, none),
    Driver = self(),
    {ok, Sup} = supervisor:start_link(?MODULE, {N, Driver}),
    First = receive {up, C0} -> C0 end,
    T0 = erlang:monotonic_time(microsecond),
    First ! crash,
    drive(N),
    T1 = erlang:monotonic_time(microsecond),
    S = (T1 - T0) / 1.0e6,
    io:format("sup-restart ~B ops in ~.4f s = ~B ops/s~n",
              [N, S, round(N / S)]),
    unlink(Sup),
    exit(Sup, shutdown),
    ok.

%% Each hello after the first is one restart; every child but the last is
%% told to crash at once.
drive(0) ->
    ok;
drive(Left) ->
    receive
        {up, C} when Left > 1 -> C ! crash, drive(Left - 1);
        {up, _} -> ok
    end.

to_int(A) when is_atom(A) -> list_to_integer(atom_to_list(A));
to_int(L) when is_list(L) -> list_to_integer(L);
to_int(I) when is_integer(I) -> I.

init({N, Driver}) ->
    Flags = #{strategy => one_for_one, intensity => N + 1,
              period => 3600},
    Child = #{id => child, start => {?MODULE, start_child, [Driver]},
              restart => permanent, shutdown => brutal_kill,
              type => worker},
    {ok, {Flags, [Child]}}.

start_child(Driver) ->
    proc_lib:start_link(?MODULE, child_init, [self(), Driver]).

child_init(Parent, Driver) ->
    proc_lib:init_ack(Parent, {ok, self()}),
    Driver ! {up, self()},
    receive crash -> exit(crash) end.
