# SPDX-License-Identifier: BSD-2-Clause
# bash completion for dinit-userservctl (installed as
# DATADIR/bash-completion/completions/dinit-userservctl).
#
# Completes the options, the commands, user names (from the user database),
# session ids (from "dinit-userservctl --json list-sessions") and variable
# names. Asking the daemon is best effort: when it is not running, nothing is
# offered for session ids and the manager's variables.

# The session ids the daemon lists; $1: the --socket value given, if any.
_dinit_userservctl_session_ids()
{
	"${_dus_ctl:-dinit-userservctl}" ${1:+--socket "$1"} --json list-sessions 2>/dev/null |
		sed -n 's/^[[:space:]]*"id":[[:space:]]*\([0-9][0-9]*\),\{0,1\}[[:space:]]*$/\1/p'
}

# The variable names in a user's manager environment; $1: socket, $2: user.
_dinit_userservctl_manager_vars()
{
	"${_dus_ctl:-dinit-userservctl}" ${1:+--socket "$1"} show-environment ${2:+-u "$2"} \
		2>/dev/null | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p'
}

_dinit_userservctl()
{
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion -n = || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD-1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi
	local _dus_ctl=${words[0]}

	local global_opts="--socket --json --help --version -h -V"
	local commands="list-users list-sessions status enable-linger disable-linger
		stop-user restart-user reload reexec setenv unsetenv import-environment
		show-environment terminate-session"

	# Find the command word and the options given so far.
	local i word command="" command_at=0 socket="" user=""
	for ((i = 1; i < cword; i++)); do
		word=${words[i]}
		case $word in
		--socket) socket=${words[i+1]}; ((i++)); continue ;;
		--socket=*) socket=${word#--socket=}; continue ;;
		-u) [[ -n $command ]] && user=${words[i+1]}; ((i++)); continue ;;
		-*) continue ;;
		esac
		if [[ -z $command ]]; then
			command=$word
			command_at=$i
		fi
	done

	case $prev in
	--socket)
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	-u)
		COMPREPLY=($(compgen -u -- "$cur"))
		return ;;
	esac

	if [[ -z $command ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi

	# Arguments after the command, not counting options and their values.
	local nargs=0
	for ((i = command_at + 1; i < cword; i++)); do
		case ${words[i]} in
		-u) ((i++)) ;;
		-*) ;;
		*) ((nargs++)) ;;
		esac
	done

	case $command in
	status | enable-linger | disable-linger | stop-user | restart-user)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--json" -- "$cur"))
		elif ((nargs == 0)); then
			COMPREPLY=($(compgen -u -- "$cur"))
		fi ;;
	terminate-session)
		if ((nargs == 0)); then
			COMPREPLY=($(compgen -W "$(_dinit_userservctl_session_ids "$socket")" -- "$cur"))
		fi ;;
	setenv)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-u" -- "$cur"))
		elif [[ $cur != *=* ]]; then
			COMPREPLY=($(compgen -e -S = -- "$cur"))
			compopt -o nospace 2>/dev/null
		fi ;;
	unsetenv)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-u" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_dinit_userservctl_manager_vars "$socket" "$user")" \
				-- "$cur"))
		fi ;;
	import-environment)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-u" -- "$cur"))
		else
			COMPREPLY=($(compgen -e -- "$cur"))
		fi ;;
	show-environment)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-u --json" -- "$cur"))
		fi ;;
	list-users | list-sessions)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--json" -- "$cur"))
		fi ;;
	esac
}

complete -F _dinit_userservctl dinit-userservctl
