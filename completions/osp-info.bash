# bash completion for osp-info(1)                            -*- shell-script -*-
# Options must match `osp-info --help` (tests/bats/options.bats checks).

_osp_info()
{
    local cur prev words cword
    _init_completion || return

    case $prev in
        --format)
            COMPREPLY=($(compgen -W 'table json' -- "$cur"))
            return ;;
        --device)
            COMPREPLY=($(compgen -W 'cpu cuda' -- "$cur"))
            return ;;
        --threads)
            COMPREPLY=($(compgen -W "$(seq 1 "$(nproc 2>/dev/null || echo 1)")" -- "$cur"))
            return ;;
        -o | --output)
            _filedir
            return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '--stats --format -o --output -q --quiet -v
            --verbose --device --threads -h --help --version' -- "$cur"))
        return
    fi
    # INPUT: a stream or safetensors file, or a model folder
    _filedir
} && complete -F _osp_info osp-info
