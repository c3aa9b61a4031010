# bash completion for osp-train(1)                           -*- shell-script -*-
# Options must match `osp-train --help` (tests/bats/options.bats checks).

_osp_train()
{
    local cur prev words cword
    _init_completion || return

    case $prev in
        --run | --vae | --t5)
            COMPREPLY=($(compgen -d -- "$cur"))
            return ;;
        -m | --init | --data | --config | --captions | --init-2d | --lpips | -o | --output)
            _filedir
            return ;;
        --device)
            COMPREPLY=($(compgen -W 'cpu cuda' -- "$cur"))
            return ;;
        --batch | --accum | --max-steps | --time-budget | --lr | --warmup | --weight-decay | \
            --max-grad-norm | --ema | --seed | --checkpoint-every | --keep | --threads | \
            --frames | --sample-rate | --size | --image-num | --max-length | --disc-start | \
            --loss-weights)
            return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '-m --init --config --data --run --batch --accum --max-steps
            --time-budget --lr --warmup --weight-decay --max-grad-norm --ema --seed
            --checkpoint-every --keep --resume --checkpointing --shard-optimizer --captions --vae
            --t5 --frames --sample-rate --size --image-num --max-length --no-flip --tile --init-2d
            --lpips --disc-start --loss-weights -o --output -q --quiet -v --verbose --device
            --threads -h --help --version' -- "$cur"))
        return
    fi
    # the stage
    COMPREPLY=($(compgen -W 'inflate prepare dit vae' -- "$cur"))
} && complete -F _osp_train osp-train
