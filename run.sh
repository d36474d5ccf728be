#!/usr/bin/env bash
# One entry point that does all set-up on a fresh machine, then runs a job.
#   bash run.sh main   install, fetch Fashion-MNIST, train the seed-000 CNN, print test accuracy
#   bash run.sh test   install with test extras (PyTorch as the oracle), run the test suite
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

install() {
    "$PY" -m pip install --quiet --disable-pip-version-check -e ".[$1]"
}

fashion_mnist() {
    # Debian ships Fashion-MNIST's IDX files; shenjing's loader finds them there.
    if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
    fi
}

case "${1:-}" in
    main)
        install extras
        fashion_mnist
        shift
        exec "$PY" -m shenjing train --model seed000-cnn --dataset fashion-mnist "$@"
        ;;
    test)
        install test
        fashion_mnist
        shift
        exec "$PY" -m pytest -p no:cacheprovider "$@"
        ;;
    *)
        echo "usage: bash run.sh {main|test} [extra args]" >&2
        exit 2
        ;;
esac
