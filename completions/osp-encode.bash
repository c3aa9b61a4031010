# bash completion for osp-encode(1)                          -*- shell-script -*-
# Options must match `osp-encode --help` (tests/bats/options.bats checks).

_osp_encode()
{
    local cur prev words cword
    _init_completion || return

    case $prev in
        -m | --model)
            COMPREPLY=($(compgen -d -- "$cur"))
            return ;;
        --mode)
            COMPREPLY=($(compgen -W 'sample mean' -- "$cur"))
            return ;;
        --device)
            COMPREPLY=($(compgen -W 'cpu cuda' -- "$cur"))
            return ;;
        --size)
            COMPREPLY=($(compgen -W '256x256 512x512' -- "$cur"))
            return ;;
        --seed | --frames | --start | --stride | --tile-size | --tile-overlap | --chunk-frames | --chunk-overlap | --max-memory | --threads)
            return ;;
        -o | --output)
            _filedir
            return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-m --model --tile --no-tile --tile-size --tile-overlap
            --chunk-frames --chunk-overlap --max-memory
            --mode --seed --moments --frames --start --stride --size -o --output -q
            --quiet -v --verbose --device --threads -h --help --version' -- "$cur"))
        return
    fi
    # INPUT: a video file, a PNG, a folder of PNGs or a stream
    _filedir
} && complete -F _osp_encode osp-encode
