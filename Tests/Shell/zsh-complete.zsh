#!/usr/bin/env zsh
# Prints, one per line, the matches zsh's completion system offers at the
# end of a command line: an interactive zsh in a pseudo-terminal loads the
# completion from DIR (compinit), a wrapper around compadd reports what is
# added, and a TAB is sent.
# Usage: zsh -f zsh-complete.zsh DIR 'vmup -t '
emulate -L zsh
zmodload zsh/zpty zsh/zselect
zpty z zsh -f -i
zpty -w z "PS1=''"
zpty -w z "fpath=(${(q)1} \$fpath); autoload -U compinit; compinit -u -D"
# The markers are spelled so that the echoed input does not hold them.
# Calls that already collect into an array (-O, -A, -D) are the completion
# system's own bookkeeping: passed through untouched.
zpty -w z 'compadd() { if (( ${argv[(I)-[OAD]]} )); then builtin compadd "$@"; return; fi; local -a __m; builtin compadd -A __m "$@"; print -rl -- ${__m/#/M${:-ATCH:}}; builtin compadd "$@"; }'
zpty -w z '__done() { print -r -- COMPLETION-${:-DONE}; }; comppostfuncs=(__done)'
# -n: no newline, so the line is completed, never run.
zpty -n -w z "$2"$'\t'
local out line
integer deadline=$(( SECONDS + 20 ))
while (( SECONDS < deadline )); do
  if zpty -r -t z line; then
    out+=$line
    [[ $out == *COMPLETION-DONE* ]] && break
  else
    zselect -t 5
  fi
done
zpty -d z
for line in ${(f)out}; do
  line=${line%$'\r'}
  [[ $line == *MATCH:* ]] && print -r -- ${line#*MATCH:}
done
[[ $out == *COMPLETION-DONE* ]]
