%% The Erlang/OTP twin of troupe's echo sample: a gen_tcp echo server with
%% one process per connection, the server side of the echo workload
%% (samples/bench/echo_compare.sh, troupe-echo-load is its client).
%%
%%   erlc -o DIR samples/bench/peers/echo_server.erl
%%   erl -noshell +S 2 +K true +Q 65536 -pa DIR \
%%       -eval "echo_server:main(['PORT'])."
%%
%% Prints one line once it listens on 127.0.0.1:PORT (PORT 0: a free port,
%% the one printed), and serves until it is killed:
%%
%%   listening <PORT>
%%
%% The listen socket takes a backlog of 1024 connections, and ACCEPTORS
%% processes call gen_tcp:accept on it at once. Each connection gets a new
%% process, made its socket's controlling process, which reads in binary
%% mode with {active, once} (one message at a time, so a slow handler
%% pushes back on its client through TCP rather than filling its mailbox)
%% and sends back each piece of data as it came. {nodelay, true}, as the
%% client has. Errors and closes end the connection's process, nothing
%% else.
%%
%% Ports and descriptors: every connection is a port of the VM and an open
%% file. +Q raises the VM's port limit (65536 is the default of OTP 25, so
%% +Q only matters for more connections than that, or on a system built
%% with a lower one), and the shell's limit of open files must let the VM
%% have one a connection: for 10,000 connections, ulimit -n 10100 or more
%% (erlang:system_info(check_io) shows the VM's max_fds). +K true, the
%% kernel's poll (epoll), is the default since OTP 21; it is there to say
%% so.
-module(echo_server).
-export([main/1]).

-define(ACCEPTORS, 8).

main([PortA]) ->
    Port = to_int(PortA),
    {ok, Listen} = gen_tcp:listen(Port, [binary, {packet, raw},
                                         {active, false}, {ip, {127, 0, 0, 1}},
                                         {reuseaddr, true}, {nodelay, true},
                                         {backlog, 1024}]),
    {ok, Bound} = inet:port(Listen),
    [spawn_link(fun() -> accept(Listen) end) || _ <- lists:seq(1, ?ACCEPTORS)],
    io:format("listening ~B~n", [Bound]),
    %% The listen socket closes when its owner exits: this process, the
    %% one -eval runs in, stays until the VM is killed.
    receive stop -> ok end.

accept(Listen) ->
    case gen_tcp:accept(Listen) of
        {ok, Sock} ->
            Pid = spawn(fun() -> receive {go, S} -> serve(S) end end),
            case gen_tcp:controlling_process(Sock, Pid) of
                ok -> Pid ! {go, Sock};
                {error, _} -> gen_tcp:close(Sock), exit(Pid, kill)
            end,
            accept(Listen);
        {error, closed} ->
            ok;
        {error, _} ->
            %% emfile and the like: the connection stays in the backlog,
            %% and the next accept tries it again.
            timer:sleep(10),
            accept(Listen)
    end.

serve(Sock) ->
    case inet:setopts(Sock, [{active, once}]) of
        ok -> echo(Sock);
        {error, _} -> gen_tcp:close(Sock)
    end.

echo(Sock) ->
    receive
        {tcp, Sock, Data} ->
            case gen_tcp:send(Sock, Data) of
                ok -> serve(Sock);
                {error, _} -> gen_tcp:close(Sock)
            end;
        {tcp_closed, Sock} ->
            ok;
        {tcp_error, Sock, _} ->
            gen_tcp:close(Sock)
    end.

to_int(A) when is_atom(A) -> list_to_integer(atom_to_list(A));
to_int(L) when is_list(L) -> list_to_integer(L);
to_int(I) when is_integer(I) -> I.
