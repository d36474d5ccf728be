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

apt_install() {
    # Debian packages: Fashion-MNIST's IDX files; Open MPI for the distributed tests;
    # Graphviz for keras.utils.plot_model. Each only when missing.
    local missing=()
    [ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
    [ "$1" = test ] && ! command -v mpirun >/dev/null && missing+=(openmpi-bin libopenmpi-dev)
    [ "$1" = test ] && ! command -v dot >/dev/null && missing+=(graphviz)
    if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

case "${1:-}" in
    main)
        apt_install main
        install extras
        shift
        exec "$PY" -m shenjing train seed000-cnn --data fashion-mnist --early-stopping 3 \
            --out runs/seed000-cnn-fashion-mnist "$@"
        ;;
    test)
        apt_install test
        install test
        shift
        exec "$PY" -m pytest -p no:cacheprovider "$@"
        ;;
    *)
        echo "usage: bash run.sh {main|test} [extra args]" >&2
        exit 2
        ;;
esac
