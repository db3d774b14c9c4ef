# SPDX-License-Identifier: BSD-2-Clause
# fish completion for dinit-userservctl (installed as
# DATADIR/fish/vendor_completions.d/dinit-userservctl.fish). Session ids come
# from "dinit-userservctl --json list-sessions" (nothing when the daemon is down).

set -l __dus_commands list-users list-sessions status enable-linger disable-linger stop-user restart-user reload reexec setenv unsetenv import-environment show-environment terminate-session
set -l __dus_user_commands status enable-linger disable-linger stop-user restart-user
set -l __dus_env_commands setenv unsetenv import-environment show-environment

function __dinit_userservctl_socket
    set -l tokens (commandline -opc)
    for i in (seq (count $tokens))
        switch $tokens[$i]
            case --socket
                set -l j (math $i + 1)
                test $j -le (count $tokens); and echo -- $tokens[$j]
                return
            case '--socket=*'
                string replace -- --socket= '' $tokens[$i]
                return
        end
    end
end

function __dinit_userservctl_sessions
    set -l socket (__dinit_userservctl_socket)
    set -l args --json list-sessions
    test -n "$socket"; and set args --socket $socket $args
    dinit-userservctl $args 2>/dev/null | string replace -rf '^\s*"id":\s*([0-9]+),?\s*$' '$1'
end

function __dinit_userservctl_manager_vars
    set -l socket (__dinit_userservctl_socket)
    set -l args show-environment
    test -n "$socket"; and set args --socket $socket $args
    dinit-userservctl $args 2>/dev/null | string replace -rf '^([A-Za-z_][A-Za-z0-9_]*)=.*' '$1'
end

complete -c dinit-userservctl -f
complete -c dinit-userservctl -l socket -r -F -d 'control socket'
complete -c dinit-userservctl -l json -d 'print JSON instead of text'
complete -c dinit-userservctl -s h -l help -d 'show the help and exit'
complete -c dinit-userservctl -s V -l version -d 'show the version and exit'

complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a list-users -d 'list the users the daemon knows'
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a list-sessions -d 'list the open sessions'
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a status -d "show a user's service manager and sessions"
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a enable-linger -d "keep a user's manager running without sessions"
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a disable-linger -d "stop a user's manager after the last session"
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a stop-user -d "stop a user's service manager"
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a restart-user -d "restart a user's service manager"
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a reload -d 'make the daemon reload its config'
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a reexec -d 're-execute the daemon in place'
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a setenv -d "set variables in a user's manager environment"
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a unsetenv -d "remove variables from a user's manager environment"
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a import-environment -d "copy this shell's variables into the manager"
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a show-environment -d "show a user's manager environment"
complete -c dinit-userservctl -n "not __fish_seen_subcommand_from $__dus_commands" -a terminate-session -d 'end a session'

complete -c dinit-userservctl -n "__fish_seen_subcommand_from $__dus_user_commands" -a '(__fish_complete_users)'
complete -c dinit-userservctl -n "__fish_seen_subcommand_from terminate-session" -a '(__dinit_userservctl_sessions)' -d session
complete -c dinit-userservctl -n "__fish_seen_subcommand_from $__dus_env_commands" -s u -x -a '(__fish_complete_users)' -d user
complete -c dinit-userservctl -n "__fish_seen_subcommand_from setenv" -a '(set -xn | string replace -r \'$\' =)'
complete -c dinit-userservctl -n "__fish_seen_subcommand_from unsetenv" -a '(__dinit_userservctl_manager_vars)'
complete -c dinit-userservctl -n "__fish_seen_subcommand_from import-environment" -a '(set -xn)'
