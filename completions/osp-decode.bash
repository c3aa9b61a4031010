# bash completion for osp-decode(1)                          -*- shell-script -*-
# Options must match `osp-decode --help` (tests/bats/options.bats checks).

_osp_decode()
{
    local cur prev words cword
    _init_completion || return

    case $prev in
        -m | --model)
            COMPREPLY=($(compgen -d -- "$cur"))
            return ;;
        --codec)
            COMPREPLY=($(compgen -W 'libx264 libx264rgb ffv1 mpeg4 libvpx-vp9' -- "$cur"))
            return ;;
        --device)
            COMPREPLY=($(compgen -W 'cpu cuda' -- "$cur"))
            return ;;
        --fps | --crf | --tile-size | --tile-overlap | --chunk-frames | --chunk-overlap | --max-memory | --threads)
            return ;;
        -o | --output)
            _filedir
            return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-m --model --tile --no-tile --tile-size --tile-overlap
            --chunk-frames --chunk-overlap --max-memory
            --fps --codec --crf -o --output -q --quiet -v --verbose --device --threads
            -h --help --version' -- "$cur"))
        return
    fi
    # INPUT: a stream holding `latent`
    _filedir
} && complete -F _osp_decode osp-decode
