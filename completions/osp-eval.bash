# bash completion for osp-eval(1)                            -*- shell-script -*-
# Options must match `osp-eval --help` (tests/bats/options.bats checks).

_osp_eval()
{
    local cur prev words cword
    _init_completion || return

    case $prev in
        --metrics)
            # a comma-separated list: complete the item after the last comma
            local prefix=
            [[ $cur == *,* ]] && prefix=${cur%,*},
            COMPREPLY=($(compgen -W 'psnr ssim lpips flolpips' -- "${cur##*,}"))
            COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
            return ;;
        --format)
            COMPREPLY=($(compgen -W 'table json csv' -- "$cur"))
            return ;;
        --device)
            COMPREPLY=($(compgen -W 'cpu cuda' -- "$cur"))
            return ;;
        --crop)
            COMPREPLY=($(compgen -W '256x256 512x512' -- "$cur"))
            return ;;
        --resolution | --frames | --sample-rate | --reference-batch | --threads)
            return ;;
        --lpips-model | --flow-model | --pairs | -o | --output)
            _filedir
            return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '--metrics --lpips-model --flow-model --format
            --per-frame --resolution --crop --frames --sample-rate --pairs
            --reference-batch --keep-going -o --output -q --quiet -v --verbose --device --threads
            -h --help --version' -- "$cur"))
        return
    fi
    # A, B: video files, PNGs, folders of PNGs or streams
    _filedir
} && complete -F _osp_eval osp-eval
