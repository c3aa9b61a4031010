# bash completion for osp-textenc(1)                         -*- shell-script -*-
# Options must match `osp-textenc --help` (tests/bats/options.bats checks).

_osp_textenc()
{
    local cur prev words cword
    _init_completion || return

    case $prev in
        -m | --model)
            COMPREPLY=($(compgen -d -- "$cur"))
            return ;;
        --clean)
            COMPREPLY=($(compgen -W 'inference training lower none' -- "$cur"))
            return ;;
        --device)
            COMPREPLY=($(compgen -W 'cpu cuda' -- "$cur"))
            return ;;
        --max-length)
            COMPREPLY=($(compgen -W '120 300' -- "$cur"))
            return ;;
        --negative-prompt | --batch | --threads)
            return ;;
        -i | --input | -o | --output)
            _filedir
            return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-m --model --max-length --clean --negative-prompt
            --no-negative --batch --tokens --from-tokens -i --input -o --output -q --quiet
            -v --verbose --device --threads -h --help --version' -- "$cur"))
        return
    fi
    # PROMPT: free text
} && complete -F _osp_textenc osp-textenc
