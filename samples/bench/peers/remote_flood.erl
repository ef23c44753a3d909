%% The Erlang/OTP twin of `troupe-bench remote-flood N`: N one-way 64-byte
%% messages from one node to a slow process on another, which spends
%% 2 us of busy work on each (as troupe-bench's "slow" actor does), and
%% answers done after the last. Two BEAM nodes on loopback:
%%
%%   erlc -o DIR samples/bench/peers/remote_flood.erl
%%   erl -noshell +S 2 -sname SRV -setcookie C -pa DIR -s remote_flood serve
%%   erl -noshell +S 2 -sname CLI -setcookie C -pa DIR \
%%       -eval "remote_flood:main(['1000000', 'SRV']), init:stop()."
%%
%% Prints, as troupe-bench does:
%%
%%   remote-flood <N> ops in <seconds> s = <msgs/s> ops/s
%%   remote-flood receiver_rss_kb <before> peak_kb <peak> refused 0 accepted <N>
%%
%% The receiver's resident memory is read from its /proc/self/status
%% (VmRSS before, VmHWM after). Erlang refuses no send: a sender whose
%% distribution buffer is busy is suspended, and the receiving node reads
%% everything into the slow process's mailbox, whatever its size.
-module(remote_flood).
-export([serve/0, main/1, slow/0]).

serve() -> register(slow, spawn(?MODULE, slow, [])).

slow() -> receive {start, N, From} -> count(N, From), slow() end.
count(0, From) -> From ! done;
count(N, From) -> receive {msg, _} -> spin(2000), count(N - 1, From) end.

%% Busy work for Ns nanoseconds.
spin(Ns) ->
    T = erlang:monotonic_time(nanosecond) + Ns,
    spin_until(T).
spin_until(T) ->
    case erlang:monotonic_time(nanosecond) < T of
        true -> spin_until(T);
        false -> ok
    end.

status_kb(Key) ->
    {ok, B} = file:read_file("/proc/self/status"),
    Lines = string:split(binary_to_list(B), "\n", all),
    [V] = [V || L <- Lines, [K, V] <- [string:split(L, ":")], K =:= Key],
    [Num | _] = string:lexemes(V, " \t"),
    list_to_integer(Num).

main([NA, SrvName]) ->
    N = list_to_integer(atom_to_list(NA)),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Srv = list_to_atom(atom_to_list(SrvName) ++ "@" ++ Host),
    pong = net_adm:ping(Srv),
    Rss0 = rpc:call(Srv, erlang, apply, [fun() -> status_kb("VmRSS") end, []]),
    {Us, _} = timer:tc(fun() -> run(N, Srv) end),
    Peak = rpc:call(Srv, erlang, apply, [fun() -> status_kb("VmHWM") end, []]),
    S = Us / 1.0e6,
    io:format("remote-flood ~B ops in ~.4f s = ~B ops/s~n", [N, S, round(N / S)]),
    io:format("remote-flood receiver_rss_kb ~B peak_kb ~B refused 0 accepted ~B~n",
              [Rss0, Peak, N]).

run(N, Srv) ->
    {slow, Srv} ! {start, N, self()},
    Payload = binary:copy(<<"x">>, 64),
    send(N, {slow, Srv}, Payload),
    receive done -> ok end.

send(0, _, _) -> ok;
send(N, To, P) -> To ! {msg, P}, send(N - 1, To, P).
