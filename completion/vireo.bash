# bash completion for vireo (virsh's twin).
# Install: copy to /usr/share/bash-completion/completions/vireo, or
#   source completion/vireo.bash
# Candidates come from `vireo _complete <words...>`, which knows the verbs,
# each verb's options and, for domain, pool, volume, network and interface
# arguments (and net-update's command and section), the names on
# the connection given with -c/--connect (or the default one).
_vireo() {
    local cur words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -n =: || return
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi
    local prog="${words[0]}"
    # Words after the program name up to the cursor; the last one is being completed.
    local args=("${words[@]:1:cword-1}" "$cur")
    local candidates
    candidates="$("$prog" _complete "${args[@]}" 2>/dev/null)"
    if [[ -n "$candidates" ]]; then
        local IFS=$'\n'
        COMPREPLY=($(compgen -W "$candidates" -- "$cur"))
    else
        # File arguments (define, create, save, restore) and everything else.
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -o filenames -F _vireo vireo
