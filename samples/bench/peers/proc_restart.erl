%% The Erlang/OTP twin of troupe-bench's process-child workloads,
%% proc-restart N and proc-call N:
%%
%%   erlc -o DIR samples/bench/peers/proc_restart.erl
%%   erl -noshell +S 2 -sname NAME -pa DIR \
%%       -eval "proc_restart:main(['proc-restart', '2000']), init:stop()."
%%   erl -noshell +S 2 -sname NAME -pa DIR \
%%       -eval "proc_restart:main(['proc-call', '100000']), init:stop()."
%%
%% proc-restart N: the restart rate of a child that is an OS process and
%% crashes at once. troupe's child is a process child whose program exits
%% with status 1 right after its root actor starts. Erlang's nearest twin
%% is a port owner: a one_for_one supervisor (intensity N + 1 within an
%% hour, so it never gives up) whose permanent child is a gen_server that
%% in its init opens a port to /bin/false (open_port spawn_executable,
%% exit_status) and stops with {port_exit, 1} when the port reports the
%% exit status. So one op is: one OS process started (fork and exec by
%% the runtime's forker) that exits with status 1, the exit seen by its
%% owner, the owner's abnormal exit, the supervisor's bookkeeping and the
%% synchronous restart of a new owner up to its new port being open. Each
%% owner's init tells the driver it is up, with the OS pid of its port;
%% the driver checks that every restart has another OS pid than the one
%% before. The clock runs from the first owner's hello to the N-th
%% restarted owner's hello. The port program neither connects back nor
%% proves a cookie, as troupe's child node does before its root actor
%% runs, so Erlang does less work per op. As in sup_restart.erl the
%% logger's level is none, so the 2 N crash reports are not formatted.
%%
%% proc-restart-gap N (and proc-restart-warm N, the same here: ports have
%% nothing like troupe's warm processes): the time a restart takes, from
%% the crash on. The port program is /bin/sh running "sleep 0.02; exec
%% date +%s%N > FILE": it writes the time (CLOCK_REALTIME, as troupe's
%% child does) 20 ms after its start and exits with status 0, which the
%% owner treats as the crash ({stop, {port_exit, 0}}). The new owner's
%% init, once its port is open, tells the driver the time; the driver
%% reads the crash's time from FILE. The seconds of the line are the sum
%% of the N restart times, and a second line gives their p50 and p99 in
%% microseconds, as troupe-bench prints them.
%%
%% proc-call N: the round trip of a call to a process in another OS
%% process on this host, against one to a local process. Erlang's twin
%% of an actor in a process child is a gen_server on a peer node started
%% with peer:start_link (+S 2, connected over loopback distribution);
%% this node must be distributed (-sname). One op is one
%% gen_server:call(Pid, ping) answered pong, N of them one after the
%% other from one process. Then the same N calls to a gen_server on this
%% node, for the ratio of the two.
%%
%% Prints the lines troupe-bench prints:
%%
%%   proc-restart <N> ops in <seconds> s = <restarts/s> ops/s
%%   proc-restart-gap <N> ops in <seconds> s = <restarts/s> ops/s
%%   proc-restart-gap latency_us p50 <us> p99 <us>
%%   proc-call <N> ops in <seconds> s = <calls/s> ops/s
%%   local-call <N> ops in <seconds> s = <calls/s> ops/s
-module(proc_restart).
%% Also the supervisor's callback module (init/1): a second -behaviour
%% attribute would only warn that both behaviours need init/1.
-behaviour(gen_server).
-export([main/1]).
-export([init/1, start_owner/1, start_gap_owner/2]).
-export([handle_call/3, handle_cast/2, handle_info/2]).

-define(PORT_PROGRAM, "/bin/false"). % exits with status 1 at once

main([WA, NA]) ->
    W = to_list(WA),
    N = list_to_integer(to_list(NA)),
    true = N > 0,
    run(W, N).

run("proc-restart", N) ->
    ok = logger:set_primary_config(level, none),
    Driver = self(),
    {ok, Sup} = supervisor:start_link(?MODULE, {sup, N, Driver}),
    OsPid0 = receive {up, P0} -> P0 end,
    T0 = erlang:monotonic_time(microsecond),
    drive(N, OsPid0),
    T1 = erlang:monotonic_time(microsecond),
    unlink(Sup),
    exit(Sup, shutdown),
    report("proc-restart", N, T1 - T0);
run(W, N) when W =:= "proc-restart-gap"; W =:= "proc-restart-warm" ->
    ok = logger:set_primary_config(level, none),
    File = filename:join("/tmp", "troupe_proc_gap_" ++ os:getpid()),
    Driver = self(),
    {ok, Sup} = supervisor:start_link(?MODULE, {gap_sup, N, Driver, File}),
    receive {up, _, _} -> ok end,
    Us = gaps(N, File, []),
    unlink(Sup),
    exit(Sup, shutdown),
    file:delete(File),
    Sum = lists:sum(Us),
    report(W, N, Sum),
    Sorted = lists:sort(Us),
    P50 = lists:nth((N + 1) div 2, Sorted),
    P99 = lists:nth(min(N, N * 99 div 100 + 1), Sorted),
    io:format("~s latency_us p50 ~B p99 ~B~n", [W, P50, P99]);
run("proc-call", N) ->
    Dir = filename:dirname(code:which(?MODULE)),
    {ok, Peer, Node} =
        peer:start_link(#{name => peer:random_name(proc_call_peer),
                          args => ["+S", "2", "-pa", Dir, "-setcookie",
                                   atom_to_list(erlang:get_cookie())],
                          wait_boot => 30000}),
    {ok, Remote} = erpc:call(Node, gen_server, start, [?MODULE, echo, []]),
    report("proc-call", N, calls(Remote, N)),
    peer:stop(Peer),
    {ok, Local} = gen_server:start(?MODULE, echo, []),
    report("local-call", N, calls(Local, N)),
    gen_server:stop(Local).

%% Each hello after the first is one restart, with a new OS process.
drive(0, _) ->
    ok;
drive(Left, Prev) ->
    receive
        {up, Prev} -> exit({os_pid_reused, Prev});
        {up, OsPid} when is_integer(OsPid) -> drive(Left - 1, OsPid)
    end.

%% The restart times (us): each hello's time less the crash's in File.
gaps(0, _, Acc) ->
    Acc;
gaps(Left, File, Acc) ->
    receive
        {up, _, At} ->
            {ok, Bin} = file:read_file(File),
            Crashed = list_to_integer(string:trim(binary_to_list(Bin))),
            gaps(Left - 1, File, [(At - Crashed) div 1000 | Acc])
    end.

%% The time of N sequential calls to Pid, in microseconds.
calls(Pid, N) ->
    pong = gen_server:call(Pid, ping), % connected and warm
    T0 = erlang:monotonic_time(microsecond),
    call_loop(Pid, N),
    erlang:monotonic_time(microsecond) - T0.

call_loop(_, 0) -> ok;
call_loop(Pid, K) -> pong = gen_server:call(Pid, ping), call_loop(Pid, K - 1).

report(W, N, Us) ->
    S = Us / 1.0e6,
    io:format("~s ~B ops in ~.4f s = ~B ops/s~n", [W, N, S, round(N / S)]).

to_list(A) when is_atom(A) -> atom_to_list(A);
to_list(L) when is_list(L) -> L.

%% The supervisor, the port owner (its child) and the echo server share
%% init/1; the argument says which one starts.
init({sup, N, Driver}) ->
    Flags = #{strategy => one_for_one, intensity => N + 1, period => 3600},
    Child = #{id => owner, start => {?MODULE, start_owner, [Driver]},
              restart => permanent, shutdown => brutal_kill,
              type => worker},
    {ok, {Flags, [Child]}};
init({gap_sup, N, Driver, File}) ->
    Flags = #{strategy => one_for_one, intensity => N + 1, period => 3600},
    Child = #{id => owner, start => {?MODULE, start_gap_owner, [Driver, File]},
              restart => permanent, shutdown => brutal_kill,
              type => worker},
    {ok, {Flags, [Child]}};
init({gap_owner, Driver, File}) ->
    Port = open_port({spawn_executable, "/bin/sh"},
                     [exit_status,
                      {args, ["-c", "sleep 0.02; exec date +%s%N > " ++ File]}]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Driver ! {up, OsPid, os:system_time(nanosecond)},
    {ok, Port};
init({owner, Driver}) ->
    Port = open_port({spawn_executable, ?PORT_PROGRAM}, [exit_status]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Driver ! {up, OsPid},
    {ok, Port};
init(echo) ->
    {ok, none}.

start_owner(Driver) ->
    gen_server:start_link(?MODULE, {owner, Driver}, []).

start_gap_owner(Driver, File) ->
    gen_server:start_link(?MODULE, {gap_owner, Driver, File}, []).

handle_call(ping, _From, S) -> {reply, pong, S}.

handle_cast(_, S) -> {noreply, S}.

%% The port program exited: the owner crashes with its status.
handle_info({Port, {exit_status, St}}, Port) -> {stop, {port_exit, St}, Port};
handle_info(_, S) -> {noreply, S}.
