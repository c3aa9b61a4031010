# bash completion for osp-denoise(1)                         -*- shell-script -*-
# Options must match `osp-denoise --help` (tests/bats/options.bats checks).

_osp_denoise()
{
    local cur prev words cword
    _init_completion || return

    case $prev in
        -m | --model)
            COMPREPLY=($(compgen -d -- "$cur"))
            return ;;
        --scheduler)
            COMPREPLY=($(compgen -W 'pndm ddim ddpm euler dpmpp' -- "$cur"))
            return ;;
        --device)
            COMPREPLY=($(compgen -W 'cpu cuda' -- "$cur"))
            return ;;
        --frames)
            COMPREPLY=($(compgen -W '1 17 65' -- "$cur"))
            return ;;
        --height | --width)
            COMPREPLY=($(compgen -W '256 512' -- "$cur"))
            return ;;
        --steps | --guidance | --seed | --timestep | --threads)
            return ;;
        --noise | --latent | -o | --output)
            _filedir
            return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-m --model --scheduler --steps --guidance --seed --frames
            --height --width --noise --predict --timestep --latent -o --output -q --quiet
            -v --verbose --device --threads -h --help --version' -- "$cur"))
        return
    fi
    # INPUT: a stream with the text embeddings
    _filedir
} && complete -F _osp_denoise osp-denoise
